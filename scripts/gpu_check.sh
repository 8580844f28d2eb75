#!/usr/bin/env bash
# Short bf16 training on an NVIDIA GPU, printing tokens/s and MFU against the GPU's measured bf16
# matmul peak. The GPU machine has torch 2.11 + CUDA but no network and none of the Debian -dev
# packages, so the binaries and their few non-torch libraries travel in a bundle made here:
#   scripts/gpu_check.sh bundle      # on the build machine: writes build-gpu/ (binaries, libs, corpus, vocab)
#   scripts/gpu_check.sh [STEPS]     # on the GPU machine (with build-gpu/ carried along)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-gpu

if [ "${1:-}" = bundle ]; then
  scripts/setup.sh
  [ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
  rm -rf $B && mkdir -p $B/bin $B/lib $B/data
  cp build/src/cli/bert-train build/src/cli/bert-vocab build/src/cli/bert-eval $B/bin/
  # Every shared library that is not part of torch/CUDA/glibc travels with the binaries.
  ldd build/src/cli/bert-train build/src/cli/bert-vocab | awk '/=>/ {print $3}' | sort -u |
    grep -E 'libutf8proc|libspdlog|libfmt|libz\.' | xargs -r -I{} cp -L {} $B/lib/
  cp data/corpus/train.txt data/corpus/valid.txt $B/data/
  build/src/cli/bert-vocab build --input $B/data/train.txt --output $B/vocab --vocab-size 16000 >/dev/null
  du -sh $B
  exit 0
fi

STEPS=${1:-300}
[ -x $B/bin/bert-train ] || { echo "no $B/: run 'scripts/gpu_check.sh bundle' on the build machine and carry $B" >&2; exit 2; }
PY=$(command -v python3 || command -v python)
TORCH_LIB=$($PY -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB:$PWD/$B/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
PEAK=$($PY -c '
import torch, time
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): a @ b
torch.cuda.synchronize(); print(20 * 2 * 8192**3 / (time.perf_counter() - t))')
echo "bf16 matmul peak: $($PY -c "print(f'{$PEAK/1e12:.0f}')") TFLOP/s"
for model in bert-small bert-base; do
  RUN=$B/runs/$model
  rm -rf "$RUN"
  $B/bin/bert-train --config configs/$model.json --device cuda \
    --set data.train_files="[\"$B/data/train.txt\"]" --set data.valid_files="[\"$B/data/valid.txt\"]" \
    --set data.vocab_dir=$B/vocab --set checkpoint.dir=$RUN --set training.max_steps=$STEPS \
    --set training.batch_size=128 --set training.grad_accum_steps=1 --set training.precision=bf16 \
    --set runtime.log_every=50 --set runtime.eval_every=0 --set checkpoint.every=$STEPS 2>&1 | tail -4
  $PY - "$RUN/metrics.jsonl" "$PEAK" "$model" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
tps = sum(r["tokens_per_s"] for r in rows[1:]) / max(1, len(rows) - 1)  # skip the warm-up window
cfg = json.load(open(f"configs/{sys.argv[3]}.json"))["model"]
L, H, I, T, V = cfg["num_layers"], cfg["hidden_size"], cfg["intermediate_size"], 128, 16000
flops = 3 * (L * (2 * (4 * H * H + 2 * H * I) + 4 * T * H) + 0.15 * 2 * (H * H + H * V))
print(f"{sys.argv[3]}: {tps:,.0f} tokens/s, MFU {100 * tps * flops / float(sys.argv[2]):.1f}% of measured bf16 peak")
PYEOF
done
