#!/usr/bin/env bash
# One run on an NVIDIA GPU that proves every CUDA path and measures the speed, in under 10 minutes:
# the CUDA model test, a training step under CUDA's sync debug mode ("error"), bf16 and fp16 training of
# bert-small and bert-base (tokens/s, MFU against the GPU's measured bf16 matmul peak, peak GPU memory),
# the attention backends (speed, and loss against the math backend), a resume on the GPU, bert-eval and
# fill-mask on the GPU checkpoint, 2 data-parallel processes over Gloo on the one GPU. Each row is
# printed as it is measured and the table again at the end; exit 1 if any part failed. Every part runs
# under its own timeout (PART_TIMEOUT, default 150 s), so one hang cannot eat the call. When $OUT is
# set (the device tool's output folder), the logs and each run's metrics.jsonl and train.log (no
# checkpoints) are copied there on exit, whatever happened.
#
# The GPU machine has torch 2.11 + CUDA but no network and none of the Debian -dev packages, so the
# binaries travel in a bundle made here; build-gpu/ (ignored by git) must travel with the run:
#   scripts/gpu_check.sh bundle      # on the build machine: writes build-gpu/ (binaries, libs, corpus, vocab)
#   scripts/gpu_check.sh --dry-run   # on the build machine: the whole script on the CPU, tiny models and steps
#   scripts/gpu_check.sh [STEPS]     # on the GPU machine, with build-gpu/ carried along (default 200 steps)
set -uo pipefail
cd "$(dirname "$0")/.."
B=${GPU_CHECK_BUNDLE:-build-gpu}  # (another bundle dir: tests/cli/gpu_check_dry_run_test.sh)

if [ "${1:-}" = bundle ]; then
  set -e
  [ "${GPU_CHECK_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh  # (the test calls it with build/ already built)
  [ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
  rm -rf $B && mkdir -p $B/bin $B/lib $B/data
  cp build/src/cli/bert-train build/src/cli/bert-vocab build/src/cli/bert-eval build/tests/model/model_test $B/bin/
  # A bundle that cannot do what the GPU run checks is refused here, not discovered there.
  ldd $B/bin/bert-train | grep -q libtorch_cuda || { echo "gpu_check bundle: bert-train is not linked to libtorch_cuda (a CPU-only build)" >&2; exit 1; }
  if strings $B/bin/bert-train | grep -q "this bert-train was built without"; then
    echo "gpu_check bundle: bert-train was built without c10d's Gloo or NCCL: $(strings $B/bin/bert-train | grep -m2 'built without' | tr '\n' ' ')" >&2; exit 1
  fi
  .venv/bin/python -c 'import torch; print(torch.__version__, torch.version.git_version, torch.version.cuda)' > $B/torch_build.txt
  # Every shared library that is not torch's, CUDA's or glibc's travels with the binaries, libstdc++ and
  # libgcc_s included: they need GLIBCXX_3.4.30, newer than many GPU hosts have.
  ldd $B/bin/* | awk '/=>/ {print $3}' | sort -u |
    grep -E 'libutf8proc|libspdlog|libfmt|libz\.|libstdc\+\+|libgcc_s' | xargs -r -I{} cp -L {} $B/lib/
  cp data/corpus/train.txt data/corpus/valid.txt $B/data/
  [ -f data/labelled/austen_train.tsv ] || .venv/bin/python scripts/make_labelled_data.py data/labelled
  cp data/labelled/austen_train.tsv data/labelled/austen_test.tsv $B/data/
  build/src/cli/bert-vocab build --input $B/data/train.txt --output $B/vocab --vocab-size 16000 >/dev/null
  mb=$(du -sm $B | cut -f1)
  echo "$B: $mb MB, torch $(cat $B/torch_build.txt)"
  [ "$mb" -lt 60 ] || { echo "gpu_check bundle: $B is $mb MB; a carry holds 64 MiB in all: keep it under 60 MB" >&2; exit 1; }
  exit 0
fi

DRY=0
if [ "${1:-}" = --dry-run ]; then DRY=1; shift; fi
STEPS=${1:-200}
[ -x $B/bin/bert-train ] || { echo "gpu_check: no $B/: run 'scripts/gpu_check.sh bundle' on the build machine and carry $B along" >&2; exit 2; }
# The project's .venv where it exists (the build machine's dry run); on the GPU machine a plain python3
# holds torch 2.11.0+cu130.
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=$(command -v python3 || command -v python); fi
chmod +x $B/bin/* 2>/dev/null  # a carry may drop the executable bit
if ! TORCH_LIB=$($PY -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null); then
  echo "gpu_check: this host's $PY has no torch; install torch==2.11.0 (the CUDA build)" >&2; exit 2
fi
TORCH_VERSION=$($PY -c 'import torch; print(torch.__version__, torch.version.cuda or "no-cuda", torch.cuda.is_available())')
HOST_TORCH=$($PY -c 'import torch; print(torch.__version__, torch.version.git_version, torch.version.cuda)')
if [ -f $B/torch_build.txt ] && [ "$(cat $B/torch_build.txt)" != "$HOST_TORCH" ]; then
  echo "gpu_check: warning: the bundle was built against torch $(cat $B/torch_build.txt); this host has $HOST_TORCH"
fi
case "$TORCH_VERSION" in
  2.11.0*) ;;
  *) echo "gpu_check: the bundle was built against torch 2.11.0; this host has torch $TORCH_VERSION" >&2; exit 2 ;;
esac
# The bundle's binaries (only they) see torch's libraries and the bundle's own; the bundle's libstdc++
# and libgcc_s only when the host's libstdc++ lacks a GLIBCXX version the binaries need (it would
# otherwise shadow the host's newer one for everything the binaries load).
BLIB=$(mktemp -d /tmp/gpu_check_lib.XXXXXX)
for f in $B/lib/*; do case $(basename "$f") in libstdc++*|libgcc_s*) ;; *) cp -P "$f" "$BLIB/" ;; esac; done
need=$(strings $B/bin/* 2>/dev/null | grep -o 'GLIBCXX_3\.4\.[0-9]*' | sort -t. -k3 -n -u | tail -1)
host_cxx=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 / {print $NF; exit}')
if ! command -v strings >/dev/null || { [ -n "$need" ] && { [ -z "$host_cxx" ] || ! strings "$host_cxx" | grep -qx "$need"; }; }; then
  cp -P $B/lib/libstdc++* $B/lib/libgcc_s* "$BLIB/" 2>/dev/null
  echo "the host's libstdc++ lacks $need: the bundle's is used for the bundle's binaries"
fi
BIN_LD="$TORCH_LIB:$BLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for t in bert-train bert-vocab bert-eval model_test; do  # wrappers: the library path for these only
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$BIN_LD" "$(cd $B/bin && pwd)/$t" > "$BLIB/$t"; chmod +x "$BLIB/$t"
done
if LD_LIBRARY_PATH="$BIN_LD" ldd $B/bin/bert-train | grep -q "not found"; then
  echo "gpu_check: libraries missing for $B/bin/bert-train:" >&2; LD_LIBRARY_PATH="$BIN_LD" ldd $B/bin/bert-train | grep "not found" >&2; exit 2
fi
X=$BLIB  # the bundle's binaries, through their wrappers

# Runs and logs: under $B on the GPU machine; a dry run writes into its own temporary directory, so
# the bundle stays small enough to carry.
if [ $DRY = 1 ]; then WORK=$(mktemp -d /tmp/gpu_check_dry.XXXXXX); else WORK=$B; fi
RUNS=$WORK/runs
if [ $DRY = 1 ]; then
  DEVICE=cpu; STEPS=4; MODELS=(bert-tiny); PRECISIONS=(bf16); SMALL=bert-tiny; BATCH=8; PEAK=0
  echo "dry run on the CPU: torch $TORCH_VERSION, $B complete, libraries resolve; runs in $WORK"
else
  [[ "$TORCH_VERSION" == *True ]] || { echo "gpu_check: torch $TORCH_VERSION sees no CUDA GPU" >&2; exit 2; }
  DEVICE=cuda; MODELS=(bert-small bert-base); PRECISIONS=(bf16 fp16); SMALL=bert-small; BATCH=128
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  PEAK=$($PY -c '
import torch, time
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): a @ b
torch.cuda.synchronize(); print(20 * 2 * 8192**3 / (time.perf_counter() - t))')
  echo "bf16 matmul peak (measured, 8192^3): $($PY -c "print(f'{$PEAK/1e12:.0f}')") TFLOP/s (H100 SXM datasheet: 989 dense)"
fi

ROWS=()    # "part|result|figures"
FAILED=0
row() {
  ROWS+=("$1|$2|$3"); [ "$2" = ok ] || [ "$2" = skipped ] || [ "$2" = info ] || FAILED=1
  printf '%-38s %-12s %s\n' "$1" "$2" "$3"  # as it is measured: a later hang cannot lose it
}
LOGS=$WORK/logs; mkdir -p $LOGS
PART_TIMEOUT=${PART_TIMEOUT:-150}
# On exit, whatever happened: logs and each run's metrics.jsonl / train.log into $OUT (no checkpoints).
save_logs() {
  [ -n "${OUT:-}" ] || return 0
  mkdir -p "$OUT/gpu_check/logs"
  cp -r $LOGS/. "$OUT/gpu_check/logs/" 2>/dev/null
  for d in $RUNS/*/; do
    [ -d "$d" ] || continue
    mkdir -p "$OUT/gpu_check/runs/$(basename "$d")"
    cp "$d"metrics.jsonl "$d"train.log "$d"run_config.json "$OUT/gpu_check/runs/$(basename "$d")/" 2>/dev/null
  done
}
trap save_logs EXIT
# Vocabulary size and sequence length of the bundle (for the FLOP count).
VOCAB_SIZE=$(wc -l < $B/vocab/vocab.txt)
SEQ_LEN=128
printf '%-38s %-12s %s\n' part result figures

# train NAME MODEL PRECISION STEPS [--set ...]: a run in $RUNS/NAME; output in $LOGS/NAME.log
train() {
  local name=$1 model=$2 precision=$3 steps=$4; shift 4
  [ -n "${KEEP_RUN:-}" ] || rm -rf "$RUNS/$name"
  timeout -k 10 $PART_TIMEOUT $X/bert-train --config configs/$model.json --device $DEVICE \
    --set data.train_files="[\"$B/data/train.txt\"]" --set data.valid_files="[\"$B/data/valid.txt\"]" \
    --set data.vocab_dir=$B/vocab --set checkpoint.dir=$RUNS/$name --set training.max_steps=$steps \
    --set data.max_seq_len=$SEQ_LEN \
    --set training.batch_size=$BATCH --set training.grad_accum_steps=1 --set training.precision=$precision \
    --set training.warmup_steps=$((steps / 10)) --set runtime.log_every=$(( steps >= 40 ? steps / 4 : 1 )) \
    --set runtime.eval_every=0 --set runtime.eval_max_batches=4 --set checkpoint.every=$steps "$@" \
    > "$LOGS/${LOG_NAME:-$name}.log" 2>&1
}
# figures RUN MODEL: "tok/s, MFU, peak memory" from metrics.jsonl (warm-up window skipped) and the memory trace
figures() {
  $PY - "$RUNS/$1/metrics.jsonl" "$PEAK" "$2" "$LOGS/$1.mem" "$VOCAB_SIZE" "$SEQ_LEN" <<'PYEOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
tps = sum(r["tokens_per_s"] for r in rows[1:]) / max(1, len(rows) - 1) if len(rows) > 1 else rows[-1]["tokens_per_s"]
cfg = json.load(open(f"configs/{sys.argv[3]}.json"))["model"]
L, H, I = cfg["num_layers"], cfg["hidden_size"], cfg["intermediate_size"]
V, T = int(sys.argv[5]), int(sys.argv[6])
flops = 3 * (L * (2 * (4 * H * H + 2 * H * I) + 4 * T * H) + 0.15 * 2 * (H * H + H * V))
peak = float(sys.argv[2])
mfu = (f"MFU {100 * tps * flops / peak:.1f}% of the measured bf16 peak, {100 * tps * flops / 989e12:.1f}% of the 989 TFLOP/s datasheet"
       if peak > 0 else "MFU n/a")
mem = "n/a"
if os.path.exists(sys.argv[4]):
    vals = [int(x) for x in open(sys.argv[4]).read().split() if x.isdigit()]
    if vals: mem = f"{max(vals) / 1024:.1f} GiB"
alloc = rows[-1].get("cuda_max_memory_allocated_gib")
alloc = f"{alloc:.1f} GiB" if alloc is not None else "n/a"
print(f"{tps:,.0f} tok/s, {mfu}, peak allocated by torch {alloc}, GPU memory in use (nvidia-smi, context and "
      f"allocator reserve included) {mem}, final loss {rows[-1]['loss']:.4f}")
PYEOF
}
last_loss() { $PY -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if '\"train\"' in l][-1]['loss'])" "$RUNS/$1/metrics.jsonl"; }

# 1. The CUDA model test (CPU vs CUDA forward/backward, bf16 autocast).
# On the GPU a skip means the binary cannot see CUDA: only the dry run accepts it.
if timeout -k 10 $PART_TIMEOUT $X/model_test --gtest_filter='BertModel.CudaMatchesCpu*' > $LOGS/model_test.log 2>&1; then
  passed=$(grep -oE '^\[  PASSED  \] [0-9]+' $LOGS/model_test.log | grep -oE '[0-9]+$')
  if [ $DRY = 1 ] || { [ "${passed:-0}" -gt 0 ] && ! grep -q '^\[  SKIPPED' $LOGS/model_test.log; }; then
    row "model test (CudaMatchesCpu)" ok "$(grep -E '^\[  (PASSED|SKIPPED) ' $LOGS/model_test.log | tr -s ' ' | paste -sd' ')"
  else row "model test (CudaMatchesCpu)" FAILED "skipped or no test ran on the GPU: $(grep -E '^\[  (PASSED|SKIPPED) ' $LOGS/model_test.log | paste -sd' ')"; fi
else row "model test (CudaMatchesCpu)" FAILED "see $LOGS/model_test.log"; fi

# 2. No host-device synchronisation inside a step: sync debug mode "error" around every step.
if train sync $SMALL bf16 20 --set runtime.cuda_sync_debug=error; then row "sync-free step (sync debug = error)" ok "20 steps"
else row "sync-free step (sync debug = error)" FAILED "$(grep -m1 -iE 'error|synchroniz' $LOGS/sync.log)"; fi

# 3. Speed: bf16 and fp16 training of the models.
for model in "${MODELS[@]}"; do
  for precision in "${PRECISIONS[@]}"; do
    name=$model-$precision
    if [ $DRY = 0 ]; then nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > $LOGS/$name.mem & MON=$!; fi
    train $name $model $precision $STEPS; rc=$?
    [ $DRY = 0 ] && kill $MON 2>/dev/null
    if [ $rc = 0 ]; then row "train $model $precision" ok "$(figures $name $model)"
    else row "train $model $precision" FAILED "exit $rc: $(tail -1 $LOGS/$name.log)"; fi
  done
done

# 4. Attention backends: speed, and the loss after N steps (dropout off) against the math backend.
NB=$(( DRY == 1 ? 4 : 60 ))
for backend in math auto flash efficient cudnn; do
  if train attn-$backend $SMALL bf16 $NB --set runtime.attention_backend=$backend \
       --set model.hidden_dropout=0 --set model.attention_dropout=0; then
    loss=$(last_loss attn-$backend); [ $backend = math ] && MATH_LOSS=$loss
    kernel=$(grep -m1 -o 'attention: [^;]*' $LOGS/attn-$backend.log)
    if [ -n "${MATH_LOSS:-}" ]; then
      diff=$($PY -c "print(f'{abs($loss - $MATH_LOSS) / $MATH_LOSS * 100:.2f}')")
      ok=$($PY -c "print('ok' if $diff < 2.0 else 'LOSS DIFFERS')"); vs="$diff% from math"
    else ok=ok; vs="no math reference (its row failed)"; fi
    [ $backend = cudnn ] && [ "$ok" != ok ] && ok=info  # kept out of auto on purpose: information only
    row "attention $backend" "$ok" "$kernel; $(figures attn-$backend $SMALL | sed "s/, MFU.*//"); loss $loss ($vs)"
  elif [ $backend = cudnn ]; then row "attention cudnn" info "not usable here: $(grep -m1 -iE 'error|kernel' $LOGS/attn-$backend.log)"
  else row "attention $backend" FAILED "$(grep -m1 -iE 'error|kernel' $LOGS/attn-$backend.log)"; fi
done

# 5. Resume on the GPU: 2 x N/2 steps against N uninterrupted (close, not bit-identical: CUDA atomics).
NR=$(( DRY == 1 ? 4 : 40 ))
if train whole $SMALL bf16 $NR && train resume $SMALL bf16 $NR --stop-after $((NR / 2)) &&
   timeout -k 10 $PART_TIMEOUT $X/bert-train --config $RUNS/resume/run_config.json > $LOGS/resume2.log 2>&1 && grep -q "resumed from" $LOGS/resume2.log; then
  row "resume on $DEVICE" ok "loss at step $NR: uninterrupted $(last_loss whole), resumed $(last_loss resume)"
else row "resume on $DEVICE" FAILED "see $LOGS/resume.log, $LOGS/resume2.log"; fi

# 6. bert-eval and fill-mask on the GPU checkpoint (default precision: bf16 on CUDA).
if timeout -k 10 $PART_TIMEOUT $X/bert-eval --checkpoint $RUNS/whole --data $B/data/valid.txt --device $DEVICE --max-batches 20 > $LOGS/eval.log 2>&1; then
  row "bert-eval" ok "$(tail -1 $LOGS/eval.log | tr -s ' ')"
else row "bert-eval" FAILED "$(tail -1 $LOGS/eval.log)"; fi
if timeout -k 10 $PART_TIMEOUT $X/bert-eval fill-mask --checkpoint $RUNS/whole --device $DEVICE "And God said, Let there be [MASK]." > $LOGS/fill.log 2>&1; then
  row "fill-mask" ok "$(grep -m1 -E '^ +1 ' $LOGS/fill.log | tr -s ' ')"
else row "fill-mask" FAILED "$(tail -1 $LOGS/fill.log)"; fi

# 6b. Fine-tuning on the GPU checkpoint in fp16 (the loss scaler's first CUDA run) against a random init.
if [ -f $B/data/austen_train.tsv ] &&
   timeout -k 10 $PART_TIMEOUT $X/bert-eval finetune --checkpoint $RUNS/whole --train $B/data/austen_train.tsv \
     --test $B/data/austen_test.tsv --device $DEVICE --precision $([ $DRY = 1 ] && echo bf16 || echo fp16) \
     --epochs $(( DRY == 1 ? 1 : 2 )) --max-seq-len 64 --lr 1e-4 --baseline > $LOGS/finetune.log 2>&1; then
  row "bert-eval finetune ($([ $DRY = 1 ] && echo bf16 || echo fp16))" ok "$(grep -m1 'pre-training gain' $LOGS/finetune.log | tr -s ' '); $(grep -m1 '^speed' $LOGS/finetune.log)"
else row "bert-eval finetune" FAILED "$(tail -1 $LOGS/finetune.log 2>/dev/null || echo 'no labelled data in the bundle')"; fi

# 7. Data-parallel: 2 processes on the one device over Gloo (CUDA gradients reduced through host
# memory, overlapped with the backward): both exit 0 and rank 0 logs the global figures.
ND=$(( DRY == 1 ? 4 : 40 ))
PORT=$((29000 + RANDOM % 1000))
rm -rf $RUNS/dp
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT KEEP_RUN=1 \
    LOG_NAME=dp-rank$r train dp $SMALL bf16 $ND --set runtime.backend=gloo --set runtime.dist_timeout_s=120 \
      --set runtime.cuda_sync_debug=warn \
      --set runtime.threads=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 )) &  # the two ranks share the cores
  DP_PID[$r]=$!
done
wait ${DP_PID[0]}; rc0=$?; wait ${DP_PID[1]}; rc1=$?
if [ $rc0 = 0 ] && [ $rc1 = 0 ] && grep -q "data-parallel: 2 processes" $LOGS/dp-rank0.log; then
  sync_figures=$($PY -c "
import json
rows = [json.loads(l) for l in open('$RUNS/dp/metrics.jsonl') if '\"train\"' in l]
r = rows[-1]
print(f\"all-reduce {r.get('allreduce_mb_per_step', 0):.0f} MB/step, {r.get('allreduce_exposed_ms_per_step', 0):.1f} ms exposed, {100 * r.get('allreduce_hidden_share', 0):.0f}% hidden\")")
  syncs=$(cat $LOGS/dp-rank0.log $LOGS/dp-rank1.log | grep -ciE 'synchroniz' || true)
  row "2 processes over Gloo" ok "$(figures dp $SMALL | sed "s/, MFU.*//"); $sync_figures; $syncs host-device sync warnings (cuda_sync_debug=warn; Gloo reduces CUDA tensors through host memory)"
else row "2 processes over Gloo" FAILED "exit $rc0/$rc1: $(tail -1 $LOGS/dp-rank0.log) | $(tail -1 $LOGS/dp-rank1.log)"; fi

echo
echo "== the table again"
printf '%-38s %-12s %s\n' part result figures
for r in "${ROWS[@]}"; do IFS='|' read -r a b c <<< "$r"; printf '%-38s %-12s %s\n' "$a" "$b" "$c"; done
[ $FAILED = 0 ] && echo "gpu_check: all parts passed" || echo "gpu_check: some parts FAILED (logs in $LOGS/)"
exit $FAILED
