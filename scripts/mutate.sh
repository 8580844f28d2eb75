#!/usr/bin/env bash
# Mutation check (opt-in, not in CI): applies each one-line bug below to the source, rebuilds
# incrementally, runs the tests that should notice, and reports whether each mutant was caught
# (a test failed) or survived (every test passed: a hole in the suite). The source is restored after
# each mutant (and on exit or Ctrl-C), then rebuilt.
#   scripts/mutate.sh            # all mutants (about 1 minute each here)
#   scripts/mutate.sh 3 5        # only mutants 3 and 5
# Exit code: 0 when every mutant run was caught, 1 when one survived, 2 on a setup problem.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d build ] && [ -x .venv/bin/python ] || { echo "run scripts/setup.sh first" >&2; exit 2; }

# file | exact text (one line, a fixed string) | replacement | ctest regex | what the bug is
# (Dropping only the loss half of the NaN guard is an equivalent mutant: a non-finite loss always
# brings non-finite gradients, which the norm half catches; so mutant 9 removes the whole guard.)
MUTANTS=(
  "src/train/trainer.cc|const bool save_now = step % cfg.checkpoint.every == 0 \|\| step == t.max_steps;|const bool save_now = step % cfg.checkpoint.every == 0;|TrainCli.ResumedRunIsBitIdentical|no checkpoint at max_steps unless it is a multiple of checkpoint.every"
  "src/train/checkpoint.cc|  model::load_weights(model, dir / \"model.safetensors\");|  (void)dir;|CheckpointTest|load_checkpoint does not load the weights"
  "src/train/trainer.cc|    optimizer.load_state(c.optimizer_state, (*resume_from / \"optimizer.safetensors\").string());|    (void)c;|TrainCli.ResumedRunIsBitIdentical|resume skips the optimizer state"
  "src/train/checkpoint.cc|  util::write_file_atomic(run_dir / \"latest\", final_dir.filename().string() + \"\\\\n\");|  (void)final_dir;|CheckpointTest\|TrainCli.Resumed\|TrainCli.Rewinding|the latest pointer is never written"
  "src/data/masking.cc|      if (r < mask_cut) ids[i] = mask_id_;|      if (r < random_cut - mask_cut) ids[i] = mask_id_;|DataMasking|the [MASK] share is the random share (10%, not 80%)"
  "src/data/masking.cc|  if (rng.uniform01() < want - k) ++k;|  (void)want;|DataMasking|the 15% is floored per sequence (fewer tokens chosen)"
  "src/data/loader.cc|  const uint64_t first = static_cast<uint64_t>(batch) * global + static_cast<uint64_t>(options_.rank) * options_.batch_size;|  const uint64_t first = static_cast<uint64_t>(batch) * global;|DataLoader|every rank reads the same rows"
  "src/train/grad_sync.cc|    b.flat.mul_(inv_world);|    (void)inv_world;|GradientSync\|TrainCli.TwoRanks|gradients summed over the ranks, not averaged"
  "src/train/train_step.cc|  r.nonfinite = r.nonfinite.to(torch::kFloat32);|  r.nonfinite = torch::zeros_like(r.loss);|TrainStep\|TrainCli.NanGuard|the NaN/Inf guard never skips an update"
  "src/util/atomic_file.cc|  if (::rename(tmp.c_str(), path.c_str()) != 0) {|  if (false) {|AtomicFile\|CheckpointTest|an atomic write never renames its temp file into place"
)

ONLY=("$@")
LOG=$(mktemp -d /tmp/mutate.XXXXXX)
current=""
restore() { [ -n "$current" ] && git checkout -q -- "$current"; current=""; }
trap 'restore; exit 130' INT TERM
trap restore EXIT

survived=0; caught=0; n=0
printf '%-3s %-9s %s\n' "#" "result" "mutant"
for entry in "${MUTANTS[@]}"; do
  n=$((n + 1))
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " =~ " $n " ]]; then continue; fi
  IFS='|' read -r file from to tests what <<<"$(printf '%s' "$entry" | sed 's/\\|/\x01/g')"
  from=${from//$'\x01'/|}; to=${to//$'\x01'/|}; tests=${tests//$'\x01'/|}
  if ! git diff --quiet -- "$file"; then echo "$file has uncommitted changes: commit or stash them first" >&2; exit 2; fi
  current=$file
  if ! FROM="$from" TO="$to" .venv/bin/python - "$file" <<'PY'
import os, sys
p = sys.argv[1]; s = open(p).read(); a = os.environ["FROM"].replace("\\\\n", "\\n")
if s.count(a) != 1:
    sys.exit(f"mutation text found {s.count(a)} times in {p}")
open(p, "w").write(s.replace(a, os.environ["TO"]))
PY
  then printf '%-3s %-9s %s\n' "$n" "STALE" "$what (the line changed: update the mutant)"; restore; survived=$((survived + 1)); continue; fi
  if ! cmake --build build >"$LOG/build-$n.log" 2>&1; then
    printf '%-3s %-9s %s\n' "$n" "caught" "$what (does not compile)"; caught=$((caught + 1)); restore; continue
  fi
  if (cd build && ctest -R "$tests" -j2 --timeout 300 >"$LOG/test-$n.log" 2>&1); then
    printf '%-3s %-9s %s   [tests: %s]\n' "$n" "SURVIVED" "$what" "$tests"; survived=$((survived + 1))
  else
    failing=$(grep -E '\(Failed\)|\(Timeout\)' "$LOG/test-$n.log" | sed -E 's/.* - ([^ ]+) .*/\1/' | head -3 | tr '\n' ' ')
    printf '%-3s %-9s %s   [failed: %s]\n' "$n" "caught" "$what" "$failing"; caught=$((caught + 1))
  fi
  restore
done
echo "rebuilding the unmutated source"
cmake --build build >"$LOG/build-final.log" 2>&1 || { echo "the final rebuild failed: see $LOG/build-final.log" >&2; exit 2; }
echo "$caught caught, $survived survived (logs in $LOG)"
[ "$survived" -eq 0 ]
