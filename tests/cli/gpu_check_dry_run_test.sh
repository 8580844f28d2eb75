#!/usr/bin/env bash
# scripts/gpu_check.sh: a bundle made from build/ (into a temporary dir), then --dry-run on the CPU:
# every row passes, the logs and each run's metrics.jsonl come back under $OUT, and the bundle is
# byte for byte the size `bundle` made it (the dry run writes its runs elsewhere, so the bundle stays
# small enough to carry). Usage: gpu_check_dry_run_test.sh SOURCE_DIR
set -uo pipefail
cd "$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export GPU_CHECK_BUNDLE=$tmp/bundle GPU_CHECK_SKIP_SETUP=1
if ! out=$(bash scripts/gpu_check.sh bundle 2>&1); then echo "FAIL: bundle: $out"; exit 1; fi
before=$(du -sb "$GPU_CHECK_BUNDLE" | cut -f1)
[ "$before" -lt 60000000 ] || { echo "FAIL: the bundle is $before bytes (over 60 MB)"; exit 1; }
if ! out=$(OUT=$tmp/out bash scripts/gpu_check.sh --dry-run 2>&1); then echo "FAIL: dry run: $out"; exit 1; fi
echo "$out" | grep -q "gpu_check: all parts passed" || { echo "FAIL: no 'all parts passed' in: $out"; exit 1; }
after=$(du -sb "$GPU_CHECK_BUNDLE" | cut -f1)
[ "$before" = "$after" ] || { echo "FAIL: the dry run changed the bundle's size: $before -> $after bytes"; exit 1; }
for f in logs/whole.log runs/whole/metrics.jsonl runs/whole/train.log runs/dp/metrics.jsonl; do
  [ -s "$tmp/out/gpu_check/$f" ] || { echo "FAIL: \$OUT lacks gpu_check/$f"; exit 1; }
done
if find "$tmp/out" -name '*.safetensors' | grep -q .; then echo "FAIL: checkpoints were copied to \$OUT"; exit 1; fi
echo "PASS: bundle $before bytes, unchanged by the dry run; logs and metrics under \$OUT"
