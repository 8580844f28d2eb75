#!/usr/bin/env bash
# Training-speed benchmark against transformers on this CPU (see scripts/bench_train.py).
#   scripts/bench_train.sh [--models tiny,mini,small] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/tests/model/bench_model ] || scripts/setup.sh
exec .venv/bin/python scripts/bench_train.py build/tests/model/bench_model "$@"
