#!/usr/bin/env bash
# Data-parallel benchmark on this CPU (Gloo, 127.0.0.1): for each model, the same global batch and
# steps trained three ways, fp32, dropout as configured:
#   1x2          one process, 2 threads, batch 2B
#   2x1          two processes (torchrun), 1 thread each, batch B each, all-reduce overlapped
#   2x1-serial   the same with runtime.grad_sync_overlap = false (every all-reduce after the backward)
# and prints per step: time, tokens/s, gradient bytes all-reduced, the time the step waited after its
# backward for the all-reduce to finish (exposed: it includes waiting for the slower rank), and the
# share of the all-reduce hidden behind the backward: the bytes whose all-reduce had completed when
# the backward returned (c10d's Work::isCompleted, polled without waiting) over all bytes.
# Targets (issue 14): hidden >= 70%; 2x1 tokens/s within 15% of 1x2.
#
#   scripts/bench_dist.sh                      # bert-mini and bert-small, B = 16, 40 steps
#   MODELS="bert-mini" STEPS=60 BATCH=8 scripts/bench_dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-"bert-mini bert-small"}
STEPS=${STEPS:-40}
BATCH=${BATCH:-16}
PORT=${PORT:-29531}
TRAIN=build/src/cli/bert-train
TORCHRUN=.venv/bin/torchrun
[ -x "$TRAIN" ] && [ -x "$TORCHRUN" ] || { echo "build/ and .venv/ missing: run scripts/setup.sh first" >&2; exit 2; }
[ -f data/corpus/train.txt ] || .venv/bin/python scripts/make_corpus.py data/corpus
WORK=$(mktemp -d /tmp/bench_dist.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
VOCAB=$WORK/vocab
build/src/cli/bert-vocab build --input data/corpus/train.txt --output "$VOCAB" --vocab-size 8000 >/dev/null 2>&1 ||
  { echo "bert-vocab build failed" >&2; exit 1; }

common() {  # model, run name, per-process batch
  echo --config "configs/$1.json" --set "data.vocab_dir=$VOCAB" --set "checkpoint.dir=$WORK/$2" \
    --set "training.batch_size=$3" --set "training.max_steps=$STEPS" --set "training.precision=fp32" \
    --set "checkpoint.every=100000" --set "runtime.eval_every=0" --set "runtime.log_every=10" \
    --set "runtime.device=cpu"
}

for model in $MODELS; do
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=2 "$TRAIN" $(common "$model" "$model-1x2" $((2 * BATCH))) --set runtime.threads=2 >"$WORK/$model-1x2.log" 2>&1 ||
    { cat "$WORK/$model-1x2.log"; exit 1; }
  for variant in 2x1 2x1-serial; do
    overlap=true; [ "$variant" = 2x1-serial ] && overlap=false
    # shellcheck disable=SC2046
    "$TORCHRUN" --nproc-per-node 2 --master-port "$PORT" --no-python "$TRAIN" $(common "$model" "$model-$variant" "$BATCH") \
      --set runtime.threads=1 --set "runtime.grad_sync_overlap=$overlap" >"$WORK/$model-$variant.log" 2>&1 ||
      { cat "$WORK/$model-$variant.log"; exit 1; }
  done
done

.venv/bin/python - "$WORK" "$MODELS" "$BATCH" <<'PYEOF'
import json, sys
work, models, batch = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])

def rows(run):
    out = [json.loads(l) for l in open(f"{work}/{run}/metrics.jsonl") if '"train"' in l]
    return out[1:] if len(out) > 1 else out  # the first window holds start-up

def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")

print(f"{'model':<11} {'run':<11} {'tok/s':>8} {'ms/step':>8} {'MB/step':>8} {'exposed ms':>10} {'started in bwd':>14} {'hidden':>7}")
ok = True
for m in models:
    fig = {}
    for run in ("1x2", "2x1", "2x1-serial"):
        r = rows(f"{m}-{run}")
        tok = mean([x["tokens_per_s"] for x in r])
        seq = mean([x["sequences_per_s"] for x in r])
        ms = 1000.0 * 2 * batch / seq
        mb = mean([x.get("allreduce_mb_per_step", 0.0) for x in r])
        exp_ms = mean([x.get("allreduce_exposed_ms_per_step", 0.0) for x in r])
        inb = mean([x.get("allreduce_buckets_started_in_backward", 0.0) for x in r])
        hid = mean([x.get("allreduce_hidden_share", 0.0) for x in r])
        fig[run] = (tok, ms, mb, exp_ms, hid)
        print(f"{m:<11} {run:<11} {tok:8.0f} {ms:8.1f} {mb:8.1f} {exp_ms:10.1f} {100 * inb:13.0f}% {100 * hid:6.0f}%")
    hidden = fig["2x1"][4]
    ratio = fig["2x1"][0] / fig["1x2"][0]
    verdict_h = "ok" if hidden >= 0.70 else "BELOW the 70% target"
    verdict_r = "ok" if ratio >= 0.85 else "BELOW the 0.85 target"
    print(f"{m:<11} all-reduce hidden behind the backward: {100 * hidden:.0f}% ({verdict_h}); "
          f"2x1 / 1x2 tokens/s = {ratio:.2f} ({verdict_r})")
    ok = ok and hidden >= 0.70 and ratio >= 0.85
sys.exit(0 if ok else 1)
PYEOF
