#!/usr/bin/env bash
# scripts/setup.sh --check: passes on this (set-up) machine, and with `bible` hidden from PATH stops
# with exit 1 and one line naming the program and its Debian package. Usage: setup_check_test.sh SOURCE_DIR
set -u
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root" || exit 1
if ! out=$(/bin/bash scripts/setup.sh --check 2>&1); then
  echo "FAIL: setup.sh --check fails on a set-up machine: $out"; exit 1
fi
# A PATH with every program of this one except `bible`.
mkdir "$tmp/bin"
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do
    b=${f##*/}
    [ "$b" = bible ] || [ -e "$tmp/bin/$b" ] || ln -s "$f" "$tmp/bin/$b"
  done
done
out=$(PATH="$tmp/bin" /bin/bash scripts/setup.sh --check 2>&1); rc=$?
expected="[setup] error: program 'bible' is missing: install the Debian package bible-kjv"
if [ $rc -ne 1 ] || [ "$out" != "$expected (apt-get install bible-kjv)" ]; then
  echo "FAIL: with bible hidden, expected exit 1 and \"$expected ...\", got exit $rc: $out"; exit 1
fi
echo "ok: $out"
