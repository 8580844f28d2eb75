#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh: packages, .venv with torch 2.11.0 and the Python oracles,
# Release build), then runs the whole test suite with CTest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -R wordpiece
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The corpus the end-to-end tests train on (built from Debian packages, a second or two).
[ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 "$@"
