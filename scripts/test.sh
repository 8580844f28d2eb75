#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh: packages, .venv with torch 2.11.0 and the Python oracles,
# Release build), then runs the whole test suite with CTest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -R wordpiece
#   scripts/test.sh --sanitize [ctest args]   # the torch-free layers under ASan + UBSan (build-sanitize/)
set -euo pipefail
cd "$(dirname "$0")/.."

# --sanitize: one function per sanitized build; each configures its own build dir, builds it and runs
# its ctest. A sanitizer report aborts the test process (-fno-sanitize-recover=all), so it fails.

# build-sanitize: g++, no torch (util, text, wordpiece, data, bert-vocab and the tests that need no
# torch: the layers' GoogleTest suites, bert-vocab's CLI tests, the tokenizers oracle, setup --check).
sanitize_torch_free() {
  local dir=build-sanitize
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERT_WITH_TORCH=OFF \
      -DBERT_SANITIZE=address,undefined -DBERT_PYTHON="$PWD/.venv/bin/python" >/dev/null
  fi
  echo "[test] building $dir (g++, ASan + UBSan, no torch)"
  cmake --build "$dir" -j "$(nproc)"
  # halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer at exit.
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --timeout 900 "$@"
}

if [ "${1:-}" = --sanitize ]; then
  shift
  BERT_SKIP_BUILD=1 scripts/setup.sh  # packages and .venv (the oracle tests' python); not build/
  [ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
  sanitize_torch_free "$@"
  exit 0
fi

scripts/setup.sh
# The corpus the end-to-end tests train on (built from Debian packages, a second or two).
[ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 "$@"
