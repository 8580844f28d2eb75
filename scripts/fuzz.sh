#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/: clang, ASan + UBSan, one per reader of outside bytes)
# into build-fuzz/ and runs each for SECONDS (default 600) on a scratch copy of its committed seed
# corpus (tests/fuzz/<name>/; new inputs go to build-fuzz/corpus/<name>/, never into git).
#   scripts/fuzz.sh [SECONDS] [HARNESS...]     e.g.  scripts/fuzz.sh 20   or   scripts/fuzz.sh 600 shard_fuzz
# Prints one line per harness (seconds it ran, executions, exec/s, coverage edges "cov", features
# "ft", corpus entries/size, exit status). Exits 1 if any harness found a crash, leak, timeout,
# out-of-memory or sanitizer report; the reproducers (crash-*, leak-*, timeout-*, oom-*) are kept in
# build-fuzz/findings/<run>/ and the path is printed. Reproduce one: build-fuzz/tests/fuzz/<harness> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
shift || true
BUILD=${BERT_FUZZ_BUILD:-build-fuzz}   # build dir (gitignored): harnesses, scratch corpora, logs, findings
RSS_LIMIT_MB=${BERT_FUZZ_RSS_MB:-2048}  # an input that needs more than this is a bug (oom-*)
TIMEOUT_S=${BERT_FUZZ_TIMEOUT_S:-10}    # one input running longer than this is a bug (timeout-*)

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  # Debug: asserts stay on (nlohmann's included); the harness CMakeLists adds -O1 -g.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DBERT_WITH_TORCH=OFF -DBERT_BUILD_TESTS=OFF -DBERT_FUZZ=ON >/dev/null
fi
echo "[fuzz] building the harnesses in $BUILD"
cmake --build "$BUILD" --target fuzzers -j "${BERT_FUZZ_JOBS:-$(nproc)}" | grep -v '^\[' || true
cmake --build "$BUILD" --target fuzzers -j 1 >/dev/null  # fails loudly if the build above failed

if [ $# -gt 0 ]; then
  harnesses=("$@")
else
  harnesses=()
  for f in "$BUILD"/tests/fuzz/*_fuzz; do harnesses+=("$(basename "$f")"); done
fi

run_id=$(date +%Y%m%d-%H%M%S)
findings="$BUILD/findings/$run_id"
failed=0
for h in "${harnesses[@]}"; do
  name=${h%_fuzz}
  corpus="$BUILD/corpus/$name"
  artifacts="$findings/$name"
  log="$BUILD/logs/$name.log"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp tests/fuzz/"$name"/* "$corpus"/
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  started=$(date +%s)
  set +e
  "$BUILD/tests/fuzz/$h" "$corpus" "${dict[@]}" -max_total_time="$SECS" -rss_limit_mb="$RSS_LIMIT_MB" \
    -timeout="$TIMEOUT_S" -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  ran=$(($(date +%s) - started))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
  found=$(find "$artifacts" -type f | wc -l)
  status=ok
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    status="FOUND SOMETHING (exit $rc; $found reproducer(s) in $artifacts; log $log)"
    failed=1
  else
    rmdir "$artifacts"
  fi
  printf '%-24s %5ss  execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-12s exit %s  %s\n' \
    "$h" "$ran" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$rc" "$status"
done
rmdir "$findings" "$BUILD/findings" 2>/dev/null || true
if [ "$failed" -ne 0 ]; then
  echo "[fuzz] findings kept in $findings (reproduce: $BUILD/tests/fuzz/<harness> <file>)" >&2
  exit 1
fi
echo "[fuzz] no crash, leak, timeout or sanitizer report"
