#!/usr/bin/env bash
# Benchmarks bert-vocab against Hugging Face tokenizers on the same corpus, side by side:
# build time for 30,522 tokens (1 and 2 threads), encode throughput (1 and 2 threads), peak RSS,
# held-out fertility of the three algorithms (wordpiece = likelihood gain, wordpiece-ratio = the
# pure count(ab)/(count(a)count(b)) score, bpe), and the ratios against the targets.
#   scripts/bench_vocab.sh CORPUS [HELDOUT]
# Environment: BERT_VOCAB_BIN (default: first of build*/src/cli/bert-vocab), BERT_PYTHON (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:?usage: scripts/bench_vocab.sh CORPUS [HELDOUT]}
HELDOUT=${2:-$CORPUS}
BIN=${BERT_VOCAB_BIN:-build/src/cli/bert-vocab}
PY=${BERT_PYTHON:-.venv/bin/python}
[ -x "$BIN" ] || { echo "bert-vocab not found; build it or set BERT_VOCAB_BIN" >&2; exit 1; }
SIZE=30522
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

# run LABEL CMD... : wall seconds and peak RSS (MB) of CMD into $W/LABEL.{time,rss,out}
run() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/$label.tv" "$@" > "$W/$label.out" 2> "$W/$label.err" || { cat "$W/$label.err" >&2; exit 1; }
  read -r secs kb < "$W/$label.tv"
  echo "$secs" > "$W/$label.time"; echo $((kb / 1024)) > "$W/$label.rss"
}
val() { cat "$W/$1.$2"; }

echo "corpus: $CORPUS ($(du -h "$CORPUS" | cut -f1)), held-out: $HELDOUT, machine: $(nproc) cores"
for t in 1 2; do
  run ours_wp_$t "$BIN" build --input "$CORPUS" --output "$W/wp_$t" --vocab-size $SIZE --threads $t
  run ours_bpe_$t "$BIN" build --input "$CORPUS" --output "$W/bpe_$t" --vocab-size $SIZE --threads $t --algorithm bpe
  RAYON_NUM_THREADS=$t run hf_$t "$PY" scripts/bench_vocab_hf.py train "$CORPUS" $SIZE "$W/hf_$t"
done
cmp -s "$W/wp_1/vocab.txt" "$W/wp_2/vocab.txt" && DET=identical || DET=DIFFERENT
overlap=$("$PY" -c "import sys; a=set(open(sys.argv[1],encoding='utf-8').read().split('\n'))-{''}; b=set(open(sys.argv[2],encoding='utf-8').read().split('\n'))-{''}; print('%.2f%% (%d vs %d tokens)' % (100*len(a&b)/max(len(a),len(b)), len(a), len(b)))" "$W/bpe_2/vocab.txt" "$W/hf_2/vocab.txt")

for t in 1 2; do
  run enc_ours_$t "$BIN" stats --vocab "$W/wp_2" --input "$CORPUS" --threads $t
  RAYON_NUM_THREADS=$t run enc_hf_$t "$PY" scripts/bench_vocab_hf.py encode "$W/wp_2" "$CORPUS"
done
run ours_ratio_2 "$BIN" build --input "$CORPUS" --output "$W/ratio_2" --vocab-size $SIZE --threads 2 --algorithm wordpiece-ratio
for v in wp_2 ratio_2 bpe_2 hf_2; do run fert_$v "$BIN" stats --vocab "$W/$v" --input "$HELDOUT" --threads 2; done

printf '\n%-44s %14s %14s %8s\n' "measure" "bert-vocab" "HF tokenizers" "ratio"
for t in 1 2; do
  printf '%-44s %13ss %13ss %7.2fx\n' "build $SIZE wordpiece vs HF, $t thread(s)" "$(val ours_wp_$t time)" "$(val hf_$t time)" \
    "$(echo "$(val hf_$t time) / $(val ours_wp_$t time)" | bc -l)"
  printf '%-44s %13ss %13ss %7.2fx\n' "build $SIZE bpe vs HF, $t thread(s)" "$(val ours_bpe_$t time)" "$(val hf_$t time)" \
    "$(echo "$(val hf_$t time) / $(val ours_bpe_$t time)" | bc -l)"
done
printf '%-44s %12sMB %12sMB\n' "peak RSS build (wordpiece / HF, 2 threads)" "$(val ours_wp_2 rss)" "$(val hf_2 rss)"
printf '%-44s %12sMB %12sMB\n' "peak RSS build (bpe / HF, 2 threads)" "$(val ours_bpe_2 rss)" "$(val hf_2 rss)"
for t in 1 2; do
  ours_mbs=$(sed -n 's/.*, \([0-9.]*\) MB\/s.*/\1/p' "$W/enc_ours_$t.out")
  ours_tps=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$W/enc_ours_$t.out")
  read -r _ hs _ ht _ hb < "$W/enc_hf_$t.out"
  hf_mbs=$(echo "$hb / 1000000 / $hs" | bc -l); hf_tps=$(echo "$ht / $hs" | bc -l)
  printf '%-44s %9.1f MB/s %9.1f MB/s %7.2fx\n' "encode, $t thread(s)" "$ours_mbs" "$hf_mbs" "$(echo "$ours_mbs / $hf_mbs" | bc -l)"
  printf '%-44s %9.0f tok/s %8.0f tok/s\n' "" "$ours_tps" "$hf_tps"
done
printf '%-44s %12sMB %12sMB\n' "peak RSS encode (2 threads)" "$(val enc_ours_2 rss)" "$(val enc_hf_2 rss)"
fert() { sed -n 's/.* \([0-9.]*\) tokens\/word.*/\1/p' "$W/fert_$1.out"; }
echo
echo "held-out fertility (tokens/word): wordpiece $(fert wp_2), wordpiece-ratio $(fert ratio_2), bpe $(fert bpe_2), HF WordPieceTrainer $(fert hf_2)"
echo "vocab sizes: wordpiece $(($(wc -l < "$W/wp_2/vocab.txt"))), wordpiece-ratio $(($(wc -l < "$W/ratio_2/vocab.txt"))), bpe $(($(wc -l < "$W/bpe_2/vocab.txt"))), HF $(($(wc -l < "$W/hf_2/vocab.txt")))"
echo "bpe vs HF vocab overlap: $overlap; wordpiece vocab 1 vs 2 threads: $DET"
echo
echo "targets: build >= 2x faster than HF (2 threads): wordpiece $(echo "$(val hf_2 time) / $(val ours_wp_2 time)" | bc -l | cut -c1-4)x, bpe $(echo "$(val hf_2 time) / $(val ours_bpe_2 time)" | bc -l | cut -c1-4)x"
echo "         encode >= 3x HF per thread: see the 1-thread ratio above"
echo "         peak memory no higher than HF; wordpiece fertility no worse than bpe: $(fert wp_2) vs $(fert bpe_2)"
