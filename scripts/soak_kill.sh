#!/usr/bin/env bash
# The kill soak (issue 12, README "Reliability"): bert-train killed at random instants (SIGKILL,
# SIGTERM, SIGINT; many inside checkpoint writes) and resumed until it finishes; the result must be
# byte-identical to an uninterrupted run. Needs the build (scripts/setup.sh).
#   scripts/soak_kill.sh            # 20 rounds x 20 kills (about 25 minutes on 2 cores)
#   scripts/soak_kill.sh 1 10       # the short version CI runs
#   scripts/soak_kill.sh 3 5 --seed 7 --keep
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/soak_kill.py "$@"
