#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine (idempotent), checks that every
# external program the scripts call is there, then configures and builds Release into build/.
# Re-running after a change only rebuilds what changed.
#   scripts/setup.sh                     # system packages + .venv (torch 2.11.0, oracles) + build
#   scripts/setup.sh --tools             # the same, but build only bert-vocab, bert-train, bert-eval
#   BERT_SKIP_BUILD=1 scripts/setup.sh   # install and check only
#   scripts/setup.sh --check             # install nothing: only check the programs (exit 1 if one is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Debian packages, and why each is here (README "Setup" lists the same):
APT_PACKAGES=(
  build-essential      # g++ and make
  cmake ninja-build    # configure and build
  pkg-config           # finds utf8proc for CMake
  python3-venv         # the project-local .venv (torch wheel = LibTorch, Python oracles)
  libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libutf8proc-dev zlib1g-dev  # libraries
  libgloo-dev          # Gloo's headers for c10d's Gloo process group (data-parallel bert-train); torch's libraries are linked
  bible-kjv            # the `bible` program and (through bible-kjv-text) the KJV text: corpus
  r-cran-janeaustenr   # Jane Austen's novels, and `Rscript` (through r-base-core) to export them: corpus
  time                 # GNU /usr/bin/time: peak RSS in the benchmarks
  clang libclang-rt-14-dev  # clang 14 and its libFuzzer/ASan/UBSan runtimes (only "recommended" by clang,
                            # so named here): scripts/fuzz.sh builds the harnesses in tests/fuzz/ with them
)

# Every external program the two README commands and the benchmarks call, with its package.
# This list is what stops the next missing program: a script that starts calling a new program adds it here.
REQUIRED_PROGRAMS=(
  "g++ build-essential" "cmake cmake" "ninja ninja-build" "pkg-config pkg-config"
  "bible bible-kjv" "Rscript r-base-core (via r-cran-janeaustenr)" "/usr/bin/time time"
  "python3 python3" "gzip gzip"
  "clang++ clang"  # scripts/fuzz.sh (libFuzzer harnesses; CI runs them after the test suite)
)

check_programs() {
  local entry prog pkg
  for entry in "${REQUIRED_PROGRAMS[@]}"; do
    prog=${entry%% *}; pkg=${entry#* }
    if ! command -v "$prog" >/dev/null 2>&1; then
      echo "[setup] error: program '$prog' is missing: install the Debian package $pkg (apt-get install $pkg)" >&2
      return 1
    fi
  done
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] error: .venv/bin/python is missing: run scripts/setup.sh (it creates .venv)" >&2
    return 1
  fi
  if ! .venv/bin/python -c 'import torch, transformers, tokenizers, safetensors, matplotlib, tensorboard; assert torch.__version__.startswith("2.11.0"), torch.__version__' >/dev/null 2>&1; then
    echo "[setup] error: .venv lacks torch==2.11.0 or an oracle package: run .venv/bin/pip install -r scripts/requirements.txt" >&2
    return 1
  fi
}

if [ "${1:-}" = --check ]; then
  check_programs
  exit 0
fi
TARGETS=()  # all
[ "${1:-}" = --tools ] && TARGETS=(--target bert-vocab bert-train bert-eval)
phase_start=$SECONDS
PHASES=""
phase_done() { PHASES+="$1 $((SECONDS - phase_start)) s, "; phase_start=$SECONDS; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
phase_done apt

# Project-local virtualenv: LibTorch (from the official torch wheel) + the Python oracles.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, transformers, tokenizers, safetensors, matplotlib, tensorboard; assert torch.__version__.startswith("2.11.0")' 2>/dev/null; then
  echo "[setup] installing torch==2.11.0 and the oracles into .venv (large download, cached by pip)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r scripts/requirements.txt
fi
phase_done pip

check_programs

[ "${BERT_SKIP_BUILD:-0}" = 1 ] && exit 0
TORCH_PREFIX=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DBERT_PYTHON="$ROOT/.venv/bin/python" >/dev/null
fi
echo "[setup] building (Release, $(nproc) jobs${TARGETS[*]:+, only the tools})"
cmake --build build -j "$(nproc)" "${TARGETS[@]}"
phase_done build
echo "[setup] done: binaries in build/src/cli/ (${PHASES%, })"
