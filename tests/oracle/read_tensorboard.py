#!/usr/bin/env python3
"""Reads a TensorBoard log dir with tensorboard's own readers (the oracle for our event files) and
prints JSON: {"scalars": {"tag": [[step, value], ...]}, "session_starts": [[file, step], ...]}.
Scalars come from EventAccumulator, which drops a restarted run's orphaned points (purge_orphaned_data)
unless --no-purge; session_starts lists every SessionLog START, by event file (in name order) and step.
Exit 1 if the dir holds no scalars.

usage: read_tensorboard.py LOGDIR [--no-purge]
"""
import glob
import json
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def main():
    logdir, purge = sys.argv[1], "--no-purge" not in sys.argv[2:]
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0}, purge_orphaned_data=purge)  # 0: every point
    acc.Reload()
    scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    if not scalars:
        sys.exit(f"read_tensorboard.py: no scalars in {logdir}")
    starts = []
    for i, path in enumerate(sorted(glob.glob(os.path.join(logdir, "*tfevents*")))):
        for event in EventFileLoader(path).Load():
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                starts.append([i, event.step])
    json.dump({"scalars": scalars, "session_starts": starts}, sys.stdout)


if __name__ == "__main__":
    main()
