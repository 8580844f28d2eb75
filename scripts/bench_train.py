#!/usr/bin/env python3
"""Training throughput, side by side on this machine: this project (tests/model/bench_model, the same
model code bert-train runs) vs transformers' BertForPreTraining (scripts/bench_train_hf.py), same torch
2.11, model, batch, sequence length, masking share and AdamW, fp32 and bf16; plus the matmul peak
measured in the same run and the MFU of each. Targets (issue 4): >= 2x transformers' tokens/s at
bert-mini fp32; bf16 >= 2.5x fp32; fp32 MFU >= 50% at bert-small.

usage: bench_train.py BENCH_MODEL_BINARY [--models tiny,mini,small] [--threads 2] [--steps 5] [--hf-malloc-tuned]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "medium": (8, 512, 8),
         "base": (12, 768, 12)}


def matmul_peak(dtype, threads, n=2048, reps=10):
    torch.set_num_threads(threads)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def train_flops_per_token(name, seq, vocab, mask_prob):
    """Model FLOPs of one training token (forward + backward = 3x forward), counting the MLM head
    only where it is needed (masked positions), as MFU conventions do."""
    layers, h, _ = SIZES[name]
    inter = 4 * h
    per_layer = 2 * (4 * h * h + 2 * h * inter) + 2 * 2 * seq * h  # projections + attention scores/values
    head = mask_prob * 2 * (h * h + h * vocab)
    return 3 * (layers * per_layer + head)


# What util::tune_allocator() does inside our binaries, as glibc environment variables: the same
# allocator behaviour for transformers' Python process (--hf-malloc-tuned).
TUNED_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(64 << 20)}


def run_each(cmd_prefix, common, models, dtypes, env=None):
    """One process per (model, dtype), so each peak RSS belongs to one configuration."""
    rows = {}
    for name in models:
        for dtype in dtypes:
            args = [x for x in common]
            args[args.index("--models") + 1] = name
            args[args.index("--dtypes") + 1] = dtype
            proc = subprocess.Popen(cmd_prefix + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=None if env is None else {**os.environ, **env})
            out_chunks = []
            for line in proc.stdout:
                out_chunks.append(line)
            err = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
            if status != 0:
                sys.exit(f"{' '.join(cmd_prefix + args)} failed:\n{err}")
            for line in out_chunks:
                if line.startswith("{"):
                    r = json.loads(line)
                    r["peak_rss_mb"] = usage.ru_maxrss / 1024
                    rows[(r["model"], r["dtype"])] = r
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_model")
    ap.add_argument("--models", default="tiny,mini,small")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--hf-malloc-tuned", action="store_true",
                    help="run transformers with the glibc malloc settings our binaries set for themselves")
    a = ap.parse_args()
    common = ["--models", a.models, "--dtypes", a.dtypes, "--threads", str(a.threads), "--steps", str(a.steps),
              "--seq", str(a.seq), "--batch", str(a.batch), "--vocab", str(a.vocab), "--json"]
    peak = {"fp32": matmul_peak(torch.float32, a.threads), "bf16": matmul_peak(torch.bfloat16, a.threads)}
    print(f"matmul peak, {a.threads} threads: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s"
          f" (ratio {peak['bf16'] / peak['fp32']:.2f}x)")
    hw = json.loads(subprocess.run([a.bench_model, "--hw-peak", "--threads", str(a.threads)], check=True,
                                   capture_output=True, text=True).stdout.strip().splitlines()[-1])
    ceiling = hw["bf16_dot_gflops"] / hw["fp32_fma_gflops"] if hw["fp32_fma_gflops"] > 0 else float("nan")
    print(f"instruction peak, {a.threads} threads: fp32 FMA {hw['fp32_fma_gflops']:.0f} GFLOP/s, bf16 VDPBF16PS "
          f"{hw['bf16_dot_gflops']:.0f} GFLOP/s: bf16 arithmetic is at most {ceiling:.2f}x fp32 on this CPU")
    models, dtypes = a.models.split(","), a.dtypes.split(",")
    ours = run_each([a.bench_model], common, models, dtypes)
    hf = run_each([sys.executable, "scripts/bench_train_hf.py"], common, models, dtypes,
                  TUNED_MALLOC_ENV if a.hf_malloc_tuned else None)
    if a.hf_malloc_tuned:
        print("transformers ran with " + " ".join(f"{k}={v}" for k, v in TUNED_MALLOC_ENV.items()))
    print(f"seq {a.seq}, batch {a.batch}, vocab {a.vocab}, forward+backward+AdamW, {a.threads} threads")
    print(f"{'model':7} {'dtype':5} {'ours tok/s':>11} {'HF tok/s':>10} {'ratio':>6} {'ours ms/step':>12} "
          f"{'HF ms/step':>10} {'ours MFU':>8} {'HF MFU':>7} {'ours RSS MB':>11} {'HF RSS MB':>9}")
    for name in a.models.split(","):
        for dtype in a.dtypes.split(","):
            o, h = ours.get((name, dtype)), hf.get((name, dtype))
            if not o or not h:
                continue
            flops = train_flops_per_token(name, a.seq, a.vocab, 0.15)
            mfu_o = o["tokens_per_s"] * flops / peak[dtype]
            mfu_h = h["tokens_per_s"] * flops / peak[dtype]
            print(f"{name:7} {dtype:5} {o['tokens_per_s']:11.0f} {h['tokens_per_s']:10.0f} "
                  f"{o['tokens_per_s'] / h['tokens_per_s']:5.2f}x {o['ms_per_step']:12.1f} {h['ms_per_step']:10.1f} "
                  f"{100 * mfu_o:7.1f}% {100 * mfu_h:6.1f}% {o.get('peak_rss_mb', 0):11.0f} {h.get('peak_rss_mb', 0):9.0f}")
    for name in a.models.split(","):
        if (name, "fp32") in ours and (name, "bf16") in ours:
            r = ours[(name, "bf16")]["tokens_per_s"] / ours[(name, "fp32")]["tokens_per_s"]
            print(f"bf16 / fp32 speed-up, {name}: {r:.2f}x (target >= 2.5x; instruction ceiling {ceiling:.2f}x, "
                  f"matmul {peak['bf16'] / peak['fp32']:.2f}x)")


if __name__ == "__main__":
    main()
