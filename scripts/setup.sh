#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine (idempotent), then configures
# and builds Release into build/. Re-running after a change only rebuilds what changed.
#   scripts/setup.sh            # system packages + .venv (torch 2.11.0, oracles) + build
#   BERT_SKIP_BUILD=1 scripts/setup.sh   # install only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES=(build-essential cmake ninja-build pkg-config python3-venv
  libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libutf8proc-dev zlib1g-dev
  bible-kjv-text r-cran-janeaustenr time)
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

# Project-local virtualenv: LibTorch (from the official torch wheel) + the Python oracles.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, transformers, tokenizers, safetensors, matplotlib; assert torch.__version__.startswith("2.11.0")' 2>/dev/null; then
  echo "[setup] installing torch==2.11.0 and the oracles into .venv (large download, cached by pip)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r scripts/requirements.txt
fi

[ "${BERT_SKIP_BUILD:-0}" = 1 ] && exit 0
TORCH_PREFIX=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DBERT_PYTHON="$ROOT/.venv/bin/python" >/dev/null
fi
echo "[setup] building (Release, $(nproc) jobs)"
cmake --build build -j "$(nproc)"
echo "[setup] done: binaries in build/src/cli/"
