#!/usr/bin/env bash
# Data pipeline benchmark: token-shard building (MB/s, peak RSS at 1x and 10x the corpus, to show
# memory stays flat) and loader throughput (sequences/s with dynamic masking, one thread), printed
# next to the rate at which each configs/bert-*.json model consumes sequences.
#
#   scripts/bench_data.sh                       # corpus data/corpus/train.txt, build dir ./build
#   BUILD=build-b CORPUS=my.txt VOCAB=runs/vocab scripts/bench_data.sh
#
# Consumer rates: measured training rates can be passed as CONSUMER_RATES="bert-tiny=12000 ..."
# (sequences/s). Otherwise each config's rate is estimated as the faster of two bounds, printed as
# parameters: FLOP-bound at ACHIEVED_TFLOPS (default 400: bf16 H100 at ~40% of its dense peak) and
# overhead-bound at STEP_FIXED_MS + layers * STEP_MS_PER_LAYER per micro-batch (defaults 1.0 and
# 0.25 ms: kernel launches of an eager LibTorch step on a GPU). Both are on the fast side, so the
# consumer rates are optimistic (high) and the 20x check errs towards failing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BENCH=${BENCH:-$BUILD/src/data/bench_data}
CORPUS=${CORPUS:-data/corpus/train.txt}
THREADS=${THREADS:-2}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
ACHIEVED_TFLOPS=${ACHIEVED_TFLOPS:-400}
STEP_FIXED_MS=${STEP_FIXED_MS:-1.0}
STEP_MS_PER_LAYER=${STEP_MS_PER_LAYER:-0.25}
PY=${PY:-python3}

[ -x "$BENCH" ] || { echo "bench_data not built: cmake --build $BUILD --target bench_data" >&2; exit 2; }
[ -f "$CORPUS" ] || { echo "corpus $CORPUS missing (scripts/make_corpus.py data/corpus)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/bench_data.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ -z "${VOCAB:-}" ]; then
  VOCAB=$WORK/vocab
  "$BENCH" make-vocab --corpus "$CORPUS" --out "$VOCAB" --size 8000 >/dev/null
  echo "vocab: none given (VOCAB=...), built a simple 8000-token word+character vocab for the benchmark"
fi

echo "== shard building ($THREADS tokenizer threads)"
for times in 1 10; do
  big=$WORK/corpus-x$times.txt
  for _ in $(seq "$times"); do cat "$CORPUS"; echo; done > "$big"
  "$BENCH" build --corpus "$big" --vocab "$VOCAB" --threads "$THREADS" | tee "$WORK/build-$times.json"
  # Reading side: index + loader memory at 1x and 10x (mapped shard pages are page cache, not counted).
  "$BENCH" load --corpus "$big" --vocab "$VOCAB" --cache "$WORK/cache-x$times" --seconds 1 > "$WORK/read-$times.json"
  rm -rf "$big" "$WORK/cache-x$times"
done
$PY - "$WORK"/build-1.json "$WORK"/build-10.json "$WORK"/read-1.json "$WORK"/read-10.json <<'PYEOF'
import json, sys
a, b, ra, rb = (json.load(open(p)) for p in sys.argv[1:5])
print(f"build: {a['mb_per_s']:.1f} MB/s at {a['corpus_mb']:.1f} MB, {b['mb_per_s']:.1f} MB/s at {b['corpus_mb']:.1f} MB;"
      f" peak RSS {a['max_rss_mb']:.0f} MB -> {b['max_rss_mb']:.0f} MB for 10x the corpus"
      f" ({'flat' if b['max_rss_mb'] < 1.5 * a['max_rss_mb'] else 'growing'}; the growth is one shard's"
      f" sentence offsets, 8 B each, capped at 2^22 sentences per shard = 32 MB whatever the corpus)")
print(f"read: anonymous RSS while loading {ra['rss_anon_mb']:.0f} MB at 1x ({ra['stats']['sequences']} sequences),"
      f" {rb['rss_anon_mb']:.0f} MB at 10x ({rb['stats']['sequences']} sequences; the 40-byte-per-sequence index is memory-mapped)")
PYEOF

echo "== loader (1 thread, masking on)"
for args in "--seq-len 128" "--seq-len 512" "--seq-len 128 --packing nsp-pairs" "--seq-len 128 --whole-word"; do
  # shellcheck disable=SC2086
  "$BENCH" load --corpus "$CORPUS" --vocab "$VOCAB" --cache "$WORK/cache" --seconds "$SECONDS_PER_RUN" $args \
    | tee -a "$WORK/load.jsonl"
done

echo "== loader vs consumers"
$PY - "$WORK/load.jsonl" "$VOCAB" "$ACHIEVED_TFLOPS" "$STEP_FIXED_MS" "$STEP_MS_PER_LAYER" "${CONSUMER_RATES:-}" <<'PYEOF'
import glob, json, os, sys
loads = [json.loads(l) for l in open(sys.argv[1])]
vocab = sum(1 for _ in open(os.path.join(sys.argv[2], "vocab.txt")))
tflops, fixed_ms, ms_per_layer, given = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
measured = dict(kv.split("=") for kv in given.split()) if given else {}
for l in loads:
    s = l["stats"]
    print(f"loader seq_len {l['seq_len']:4d} {l['packing']:15s} whole_word={str(l['whole_word']).lower():5s}: "
          f"{l['sequences_per_s']:10.0f} seq/s {l['tokens_per_s']/1e6:6.1f} M tok/s  packing "
          f"{100*s['packing_efficiency']:.2f}%  sequences {s['sequences']}  predicted {100*l['predicted_share']:.2f}%")
base = next(l for l in loads if l["seq_len"] == 128 and l["packing"] == "full-sentences" and not l["whole_word"])
rate = base["sequences_per_s"]
print(f"parameters: ACHIEVED_TFLOPS={tflops} STEP_FIXED_MS={fixed_ms} STEP_MS_PER_LAYER={ms_per_layer} vocab={vocab}"
      + (f" CONSUMER_RATES='{given}'" if given else ""))
print(f"{'config':12s} {'layers':>6s} {'hidden':>6s} {'consumer seq/s':>15s} {'source':>9s} {'loader/consumer':>16s}")
ok = True
for path in sorted(glob.glob("configs/bert-*.json")):
    c = json.load(open(path)); m = c["model"]; t = c["data"]["max_seq_len"]
    name = os.path.basename(path)[:-5]
    L, H, I = m["num_layers"], m["hidden_size"], m["intermediate_size"]
    batch = c["training"]["batch_size"]
    if name in measured:
        consumer, src = float(measured[name]), "measured"
    else:
        # forward+backward = 3x forward; per token: 2*(4H^2 + 2HI) per layer (dense), 2*2*T*H per layer
        # (attention scores and mix), MLM head (H*H transform + H*V decoder) on 15% of tokens.
        per_token = 3 * (L * (2 * (4 * H * H + 2 * H * I) + 4 * t * H) + 0.15 * 2 * (H * H + H * vocab))
        flop_bound = tflops * 1e12 / (per_token * t)
        overhead_bound = batch / ((fixed_ms + L * ms_per_layer) / 1e3)
        consumer, src = min(flop_bound, overhead_bound), "estimate"
    ratio = rate / consumer
    ok &= ratio >= 20
    print(f"{name:12s} {L:6d} {H:6d} {consumer:15.0f} {src:>9s} {ratio:15.1f}x")
print("loader >= 20x the fastest consumer:", "yes" if ok else "NO")
PYEOF
