#!/usr/bin/env python3
"""Hugging Face side of scripts/bench_vocab.sh. Thread count comes from RAYON_NUM_THREADS.
  bench_vocab_hf.py train CORPUS VOCAB_SIZE OUT_DIR   -> prints "train_seconds S"
  bench_vocab_hf.py encode VOCAB_DIR CORPUS           -> prints "encode_seconds S tokens N bytes B"
"""
import os
import sys
import time

from tokenizers import BertWordPieceTokenizer


def train(corpus, vocab_size, out_dir):
    tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    t0 = time.perf_counter()
    tok.train([corpus], vocab_size=int(vocab_size), min_frequency=2, limit_alphabet=1000,
              special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    print("train_seconds %.3f" % (time.perf_counter() - t0))
    os.makedirs(out_dir, exist_ok=True)
    tok.save_model(out_dir)


def encode(vocab_dir, corpus):
    tok = BertWordPieceTokenizer(os.path.join(vocab_dir, "vocab.txt"), lowercase=True, strip_accents=True)
    with open(corpus, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    t0 = time.perf_counter()
    tokens = 0
    for i in range(0, len(lines), 10000):
        tokens += sum(len(e.ids) for e in tok.encode_batch(lines[i:i + 10000], add_special_tokens=False))
    print("encode_seconds %.3f tokens %d bytes %d" % (time.perf_counter() - t0, tokens, len(text.encode("utf-8"))))


if __name__ == "__main__":
    {"train": train, "encode": encode}[sys.argv[1]](*sys.argv[2:])
