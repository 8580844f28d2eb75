#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh: packages, .venv with torch 2.11.0 and the Python oracles,
# Release build), then runs the whole test suite with CTest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -R wordpiece
#   scripts/test.sh --sanitize [ctest args]   # the torch-free layers under ASan + UBSan (build-sanitize/)
#   scripts/test.sh --sanitize-torch [args]   # everything, torch layers included, under UBSan (build-ubsan/)
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

# build-ubsan: g++, LibTorch, UBSan on every target (our code instrumented; LibTorch's own libraries are
# not, and ASan is not used here: LibTorch is not built with it). About twice the normal build time.
sanitize_torch_ubsan() {
  local dir=build-ubsan
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERT_SANITIZE=undefined \
      -DCMAKE_PREFIX_PATH="$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
      -DBERT_PYTHON="$PWD/.venv/bin/python" >/dev/null
  fi
  echo "[test] building $dir (g++, UBSan, with LibTorch)"
  cmake --build "$dir" -j "$(nproc)"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --timeout 1800 "$@"
}

if [ "${1:-}" = --sanitize ] || [ "${1:-}" = --sanitize-torch ]; then
  mode=$1
  shift
  BERT_SKIP_BUILD=1 scripts/setup.sh  # packages and .venv (the oracle tests' python); not build/
  [ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
  if [ "$mode" = --sanitize ]; then sanitize_torch_free "$@"; else sanitize_torch_ubsan "$@"; fi
  exit 0
fi

scripts/setup.sh
# The corpus the end-to-end tests train on (built from Debian packages, a second or two).
[ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 "$@"
