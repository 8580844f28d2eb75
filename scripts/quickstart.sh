#!/usr/bin/env bash
# The main job end to end on a fresh machine: set up, build the real corpus (KJV Bible + Jane
# Austen, from Debian packages), learn a WordPiece vocabulary, pre-train bert-mini for a fixed
# 8 minutes of wall clock (training.time_budget; bf16 where the CPU has it, else fp32), evaluate on
# held-out text, show fill-mask predictions, plot the loss curve, and fine-tune the model on a small
# labelled task (Austen sentences by novel) against the same recipe from a random initialisation.
#   scripts/quickstart.sh                          # everything
#   QUICKSTART_BUDGET=3m scripts/quickstart.sh     # a shorter pre-training (any duration: 90s, 20m, 1h)
#   QUICKSTART_STEPS=200 scripts/quickstart.sh     # at most 200 steps within the budget
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's wall time, printed at the end.
TIMES=()
t0=$SECONDS
phase() { TIMES+=("$(printf '%-34s %4d s' "$1" $((SECONDS - t0)))"); t0=$SECONDS; }
scripts/setup.sh --tools  # the three tools only; scripts/test.sh builds the tests
phase "set-up (apt, pip, build)"
BIN=build/src/cli

echo "== 1. corpus"
python3 scripts/make_corpus.py data/corpus

phase "1. corpus"
echo "== 2. vocabulary (WordPiece, 16k, uncased)"
$BIN/bert-vocab build --input data/corpus/train.txt --output runs/vocab --vocab-size 16000 \
  --mode uncased --heldout data/corpus/valid.txt
$BIN/bert-vocab stats --vocab runs/vocab --input data/corpus/valid.txt
printf '%s\n' "In the beginning God created the heaven and the earth." \
  "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife." \
  "Natura stwarza najpiękniejsze obrazy." "Zażółć gęślą jaźń." | $BIN/bert-vocab encode --vocab runs/vocab

phase "2. vocabulary"
echo "== 3. pre-training bert-mini for ${QUICKSTART_BUDGET:-8m} (configs/quickstart.json)"
# Each quickstart trains afresh (a finished run would otherwise just be resumed at its end); an
# earlier run is moved aside, never deleted.
if [ -d runs/quickstart ]; then
  prev=runs/quickstart.$(date +%Y%m%d-%H%M%S)
  mv runs/quickstart "$prev"
  echo "the previous runs/quickstart is kept as $prev"
fi
SET=()
[ -n "${QUICKSTART_BUDGET:-}" ] && SET+=(--set "training.time_budget=$QUICKSTART_BUDGET")
[ -n "${QUICKSTART_STEPS:-}" ] && SET+=(--set "training.max_steps=$QUICKSTART_STEPS")
$BIN/bert-train --config configs/quickstart.json "${SET[@]}"

phase "3. pre-training"
echo "== 4. evaluation on held-out text"
$BIN/bert-eval --checkpoint runs/quickstart --data data/corpus/valid.txt

phase "4. evaluation"
echo "== 5. fill-mask"
$BIN/bert-eval fill-mask --checkpoint runs/quickstart --top-k 5 \
  "And God said, Let there be [MASK]: and there was light." \
  "It is a truth universally acknowledged, that a single man in possession of a good [MASK] must be in want of a wife." \
  "Elizabeth could not help [MASK] at her sister."

phase "5. fill-mask"
echo "== 6. loss curve"
.venv/bin/python scripts/plot_metrics.py runs/quickstart/metrics.jsonl runs/quickstart/loss.png
phase "6. loss curve"
echo "== 7. does pre-training help? fine-tune on Austen sentences labelled by novel, vs a random init"
.venv/bin/python scripts/make_labelled_data.py data/labelled
$BIN/bert-eval finetune --checkpoint runs/quickstart --train data/labelled/austen_train.tsv \
  --test data/labelled/austen_test.tsv --max-seq-len 64 --epochs 4 --lr 1e-4 --baseline
phase "7. fine-tuning vs random init"
echo "time by phase:"
printf '  %s\n' "${TIMES[@]}"
echo "quickstart done: checkpoint runs/quickstart/$(cat runs/quickstart/latest), curve runs/quickstart/loss.png"
