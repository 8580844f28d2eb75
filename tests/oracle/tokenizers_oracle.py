#!/usr/bin/env python3
"""Oracle side of the tokenizer tests: runs Hugging Face `tokenizers` / `transformers` on the same
inputs the C++ code sees and writes results for the C++ test to compare. Lines are split on "\\n"
only (not str.splitlines, which also breaks on U+0085, U+2028, VT, FF), as the C++ side does.
Subcommands:
  normalize MODE OUT          per-code-point BertNormalizer output: "<cp hex>\\t<utf-8 hex>"
  pretokenize MODE IN OUT     words of normalize + BertPreTokenizer per line, space-joined
  encode VOCAB_DIR MODE IN OUT  ids per line from BertWordPieceTokenizer, checked against
                              BertTokenizerFast(vocab_file=..., ...) and AutoTokenizer(VOCAB_DIR)
  decode VOCAB_DIR IDS_IN OUT   tokenizers' decode (skip specials) of each line of ids
  train IN VOCAB_SIZE MIN_FREQ LIMIT_ALPHABET MODE OUT  HF WordPieceTrainer vocab, one token a line
"""
import sys

from tokenizers import BertWordPieceTokenizer, normalizers, pre_tokenizers

MODES = {"uncased": (True, True), "cased": (False, False), "lowercase": (True, False)}


def normalizer(mode):
    lower, strip = MODES[mode]
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                      strip_accents=strip, lowercase=lower)


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def code_points():
    # Every code point of planes 0-3 (all assigned scripts); a sample of the rest.
    for cp in list(range(0, 0x40000)) + list(range(0x40000, 0x110000, 97)):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        yield cp


def cmd_normalize(mode, out):
    n = normalizer(mode)
    with open(out, "w") as f:
        for cp in code_points():
            f.write("%x\t%s\n" % (cp, n.normalize_str(chr(cp)).encode("utf-8").hex()))


def cmd_pretokenize(mode, inp, out):
    n, p = normalizer(mode), pre_tokenizers.BertPreTokenizer()
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for line in read_lines(inp):
            f.write(" ".join(w for w, _ in p.pre_tokenize_str(n.normalize_str(line))) + "\n")


def cmd_encode(vocab_dir, mode, inp, out):
    from transformers import AutoTokenizer, BertTokenizerFast
    lower, strip = MODES[mode]
    vocab_file = vocab_dir + "/vocab.txt"
    tok = BertWordPieceTokenizer(vocab_file, clean_text=True, handle_chinese_chars=True,
                                 strip_accents=strip, lowercase=lower)
    # transformers >= 5 takes `vocab=` (a `vocab_file=` keyword is silently ignored there); 4.x takes
    # `vocab_file=`.
    import inspect
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    fast = BertTokenizerFast(**{key: vocab_file}, do_lower_case=lower, strip_accents=strip)
    auto = AutoTokenizer.from_pretrained(vocab_dir)
    lines = read_lines(inp)
    ids = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    for name, other in (("BertTokenizerFast", fast), ("AutoTokenizer", auto)):
        got = other(lines, add_special_tokens=False)["input_ids"]
        bad = [i for i in range(len(lines)) if got[i] != ids[i]]
        if bad:
            sys.exit("%s disagrees with BertWordPieceTokenizer on %d lines, first %d" % (name, len(bad), bad[0]))
    with open(out, "w") as f:
        for row in ids:
            f.write(" ".join(map(str, row)) + "\n")


def cmd_decode(vocab_dir, inp, out):
    tok = BertWordPieceTokenizer(vocab_dir + "/vocab.txt")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for line in read_lines(inp):
            ids = [int(x) for x in line.split()]
            f.write(tok.decode(ids, skip_special_tokens=True).replace("\n", " ") + "\n")


def cmd_train(inp, vocab_size, min_freq, limit_alphabet, mode, out):
    lower, strip = MODES[mode]
    tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True,
                                 strip_accents=strip, lowercase=lower)
    tok.train([inp], vocab_size=int(vocab_size), min_frequency=int(min_freq),
              limit_alphabet=int(limit_alphabet) if int(limit_alphabet) > 0 else None,
              special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for t, _ in vocab:
            f.write(t + "\n")


if __name__ == "__main__":
    cmds = {"normalize": cmd_normalize, "pretokenize": cmd_pretokenize, "encode": cmd_encode,
            "decode": cmd_decode, "train": cmd_train}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
