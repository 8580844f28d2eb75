#!/usr/bin/env python3
"""Training-step throughput of transformers' BertForPreTraining: the baseline for bench_model.

The same work as tests/model/bench_model.cc: random full-length batches, 15% of positions with MLM
labels, NSP labels, forward + backward + AdamW step, eager PyTorch (no torch.compile), fp32 or bf16
autocast, torch.set_num_threads(--threads). Prints one line (or JSON object) per model and dtype.

  .venv/bin/python scripts/bench_train_hf.py --models tiny,mini,small --dtypes fp32,bf16
"""
import argparse
import json
import time

import torch
from transformers import BertConfig, BertForPreTraining

SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "medium": (8, 512, 8),
         "base": (12, 768, 12)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,mini,small")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mask-prob", type=float, default=0.15)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="attention implementation")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    for name in a.models.split(","):
        layers, hidden, heads = SIZES[name]
        for dtype in a.dtypes.split(","):
            cfg = BertConfig(vocab_size=a.vocab, hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, intermediate_size=4 * hidden,
                             max_position_embeddings=max(512, a.seq), attn_implementation=a.attn)
            torch.manual_seed(0)
            model = BertForPreTraining(cfg).to(dev).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
            ids = torch.randint(5, a.vocab, (a.batch, a.seq))
            types = torch.zeros_like(ids)
            types[:, a.seq // 2:] = 1
            mask = torch.ones_like(ids)
            labels = torch.where(torch.rand(a.batch, a.seq) < a.mask_prob, ids, torch.full_like(ids, -100))
            nsp = torch.randint(0, 2, (a.batch,))
            ids, types, mask, labels, nsp = (t.to(dev) for t in (ids, types, mask, labels, nsp))

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=(dtype == "bf16")):
                    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels,
                                next_sentence_label=nsp)
                out.loss.backward()
                opt.step()
                return out.loss.item()

            for _ in range(a.warmup):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(a.steps):
                loss = step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            cpu_ms = 1000 * (time.process_time() - c0) / a.steps  # steadier than wall time on a shared machine
            tps = a.steps * a.batch * a.seq / secs
            if a.json:
                print(json.dumps({"impl": "hf", "model": name, "dtype": dtype, "seq": a.seq, "batch": a.batch,
                                  "threads": torch.get_num_threads(), "ms_per_step": 1000 * secs / a.steps, "cpu_ms_per_step": cpu_ms,
                                  "tokens_per_s": tps, "loss": loss}), flush=True)
            else:
                print(f"hf   {name:>6} {dtype:>4} seq {a.seq} batch {a.batch} threads {torch.get_num_threads()}: "
                      f"{1000 * secs / a.steps:8.1f} ms/step {tps:9.1f} tokens/s {cpu_ms:8.1f} cpu-ms/step (loss {loss:.3f})", flush=True)


if __name__ == "__main__":
    main()
