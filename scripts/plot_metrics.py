#!/usr/bin/env python3
"""Plots a run's metrics.jsonl (training loss and MLM accuracy per logged step, validation loss and
accuracy) to a PNG.  usage: plot_metrics.py RUN_DIR/metrics.jsonl OUT.png"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    train, valid = [], []
    with open(sys.argv[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{sys.argv[1]}:{n}: not JSON ({e})")
            (valid if row.get("type") == "valid" else train).append(row)
    if not train:
        sys.exit(f"{sys.argv[1]}: no training rows to plot")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    ax_acc.plot([r["step"] for r in train], [r["mlm_accuracy"] for r in train], label="train MLM accuracy")
    if valid:
        ax_loss.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid loss")
        ax_acc.plot([r["step"] for r in valid], [r["accuracy"] for r in valid], "o-", label="valid accuracy")
    ax_loss.set_xlabel("step"); ax_loss.set_ylabel("masked-LM loss"); ax_loss.legend(); ax_loss.grid(alpha=.3)
    ax_acc.set_xlabel("step"); ax_acc.set_ylabel("accuracy"); ax_acc.legend(); ax_acc.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
