#!/usr/bin/env python3
"""Reads a TensorBoard log dir with tensorboard's own EventAccumulator (the oracle for our event
files) and prints {"tag": [[step, value], ...], ...} as JSON. Exit 1 if it holds no scalars.

usage: read_tensorboard.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    if not out:
        sys.exit(f"read_tensorboard.py: no scalars in {sys.argv[1]}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
