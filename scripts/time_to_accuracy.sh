#!/usr/bin/env bash
# Time to accuracy (MLPerf-style) for each config: minutes and tokens to 20/25/30/35 % validation
# masked-LM accuracy (15 % masking, 80/10/10), final accuracy and fill-mask top-1.
#   scripts/time_to_accuracy.sh configs/quickstart.json configs/quickstart-old.json
# Needs the corpus and vocabulary of scripts/quickstart.sh (steps 1-2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/src/cli/bert-train ] || scripts/setup.sh
[ -f data/corpus/train.txt ] || python3 scripts/make_corpus.py data/corpus
[ -f runs/vocab/vocab.txt ] || build/src/cli/bert-vocab build --input data/corpus/train.txt --output runs/vocab \
  --vocab-size 16000 --mode uncased
exec .venv/bin/python scripts/time_to_accuracy.py "$@"
