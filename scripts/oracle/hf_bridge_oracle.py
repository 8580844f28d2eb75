#!/usr/bin/env python3
"""Oracle for tests/eval/hf_bridge_test.cc: the Hugging Face side of the bert-eval bridge.

  hf_bridge_oracle.py make-hf DIR
      A random tiny transformers BertForPreTraining (every parameter perturbed, so a mis-wired bias
      or LayerNorm shows) -> DIR/hf/ (save_pretrained + vocab.txt + tokenizer files) and the same
      weights as a BertForMaskedLM -> DIR/hf_mlm/ (no pooler, no NSP head). Reads the vocabulary from
      DIR/vocab.txt (written by the C++ test). Writes DIR/inputs.safetensors (a padded batch) and
      DIR/hf_logits.safetensors (eval-mode mlm/nsp logits of both models on it).
  hf_bridge_oracle.py check-checkpoint DIR CKPT
      CKPT (written by bert-eval's C++ side via train::save_checkpoint) must load in BertForPreTraining
      and BertForMaskedLM with no missing keys (and no unexpected ones for BertForPreTraining) and
      reproduce DIR/cpp_logits.safetensors (logits of the C++ model on DIR/inputs.safetensors) within
      1e-5; AutoTokenizer.from_pretrained(CKPT) must give the ids in DIR/cpp_tokens.json; the fill-mask
      results in DIR/cpp_fill_mask.json must match a manual softmax of BertForMaskedLM (same input ids,
      same top-k tokens, probabilities within 1e-4).
  hf_bridge_oracle.py same-tensors A.safetensors B.safetensors
      The two files must hold the same keys with bit-identical tensors of the same dtype.
Prints one JSON line of measurements; exit status 1 on any failure.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForPreTraining, BertTokenizer

LOGIT_TOL = 1e-5
PROB_TOL = 1e-4


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.3 * noise)


def batch(vocab_size):
    g = torch.Generator().manual_seed(7)
    B, T = 3, 14
    ids = torch.randint(5, vocab_size, (B, T), generator=g)
    ids[:, 0] = 2
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 10:] = 0
    mask[2, 6:] = 0
    ids[mask == 0] = 0
    tt = torch.zeros(B, T, dtype=torch.long)
    tt[0, 7:] = 1
    tt[1, 5:10] = 1
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": mask}


def logits(model, x):
    with torch.no_grad():
        out = model(**x)
    if hasattr(out, "prediction_logits"):
        return out.prediction_logits.contiguous(), out.seq_relationship_logits.contiguous()
    return out.logits.contiguous(), None


def make_hf(d):
    vocab_file = os.path.join(d, "vocab.txt")
    vocab_size = sum(1 for _ in open(vocab_file, encoding="utf-8"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0)
    pre = BertForPreTraining(cfg).eval()
    perturb(pre, 1)
    mlm = BertForMaskedLM(cfg).eval()
    missing, unexpected = mlm.load_state_dict(pre.state_dict(), strict=False)
    if missing:
        raise SystemExit(f"BertForMaskedLM missing keys when copying: {missing}")
    tok = BertTokenizer(vocab_file=vocab_file, do_lower_case=True)
    for sub, model in (("hf", pre), ("hf_mlm", mlm)):
        out = os.path.join(d, sub)
        model.save_pretrained(out)
        tok.save_pretrained(out)
        with open(vocab_file, encoding="utf-8") as src, open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    x = batch(vocab_size)
    save_file(x, os.path.join(d, "inputs.safetensors"))
    pre_mlm, pre_nsp = logits(pre, x)
    mlm_logits, _ = logits(mlm, x)
    save_file({"pre_mlm": pre_mlm, "pre_nsp": pre_nsp, "mlm_mlm": mlm_logits}, os.path.join(d, "hf_logits.safetensors"))
    print(json.dumps({"made": d, "vocab_size": vocab_size}))
    return 0


def check_checkpoint(d, ckpt):
    failures = []
    x = load_file(os.path.join(d, "inputs.safetensors"))
    ours = load_file(os.path.join(d, "cpp_logits.safetensors"))
    diffs = {}
    for cls, allowed_unexpected in ((BertForPreTraining, set()),
                                    (BertForMaskedLM, {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                       "cls.seq_relationship.weight", "cls.seq_relationship.bias"})):
        model, info = cls.from_pretrained(ckpt, output_loading_info=True)
        model.eval()
        for k in ("missing_keys", "mismatched_keys", "error_msgs"):
            if info.get(k):
                failures.append(f"{cls.__name__} {k}: {info[k]}")
        extra = set(info.get("unexpected_keys") or []) - allowed_unexpected
        if extra:
            failures.append(f"{cls.__name__} unexpected_keys: {sorted(extra)}")
        mlm, nsp = logits(model, x)
        pairs = [("mlm", mlm)] + ([("nsp", nsp)] if nsp is not None else [])
        for name, theirs in pairs:
            diff = float((ours[name].double() - theirs.double()).abs().max())
            diffs[f"{cls.__name__}.{name}"] = diff
            if not diff <= LOGIT_TOL:
                failures.append(f"{cls.__name__} {name} logits: max |C++ - transformers| = {diff:.3g} > {LOGIT_TOL}")

    tok = AutoTokenizer.from_pretrained(ckpt)
    tokens = json.load(open(os.path.join(d, "cpp_tokens.json"), encoding="utf-8"))
    for text, ids in zip(tokens["texts"], tokens["ids"]):
        theirs = tok(text, add_special_tokens=False)["input_ids"]
        if theirs != ids:
            failures.append(f"AutoTokenizer ids differ for {text!r}: ours {ids}, transformers {theirs}")

    model = BertForMaskedLM.from_pretrained(ckpt).eval()
    max_prob_diff = 0.0
    fills = json.load(open(os.path.join(d, "cpp_fill_mask.json"), encoding="utf-8"))
    for r in fills:
        enc = tok(r["text"], return_tensors="pt")
        if enc["input_ids"][0].tolist() != r["input_ids"]:
            failures.append(f"fill-mask input ids differ for {r['text']!r}: ours {r['input_ids']}, "
                            f"transformers {enc['input_ids'][0].tolist()}")
            continue
        with torch.no_grad():
            probs = model(**enc).logits[0].softmax(-1)  # [T, V]
        positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().view(-1).tolist()
        if positions != [m["position"] for m in r["masks"]]:
            failures.append(f"mask positions differ for {r['text']!r}")
            continue
        for pos, m in zip(positions, r["masks"]):
            k = len(m["candidates"])
            top_p, top_id = probs[pos].topk(k)
            if top_id.tolist() != [c["id"] for c in m["candidates"]]:
                failures.append(f"top-{k} for {r['text']!r} at {pos}: ours {[c['id'] for c in m['candidates']]}, "
                                f"transformers {top_id.tolist()}")
            for c in m["candidates"]:
                diff = abs(float(probs[pos, c["id"]]) - c["probability"])
                max_prob_diff = max(max_prob_diff, diff)
                if not diff <= PROB_TOL:
                    failures.append(f"probability of {c['token']!r} for {r['text']!r}: diff {diff:.3g} > {PROB_TOL}")
                if tok.convert_ids_to_tokens(c["id"]) != c["token"]:
                    failures.append(f"token string of id {c['id']}: ours {c['token']!r}")
    print(json.dumps({"max_abs_logit_diff": diffs, "max_prob_diff": max_prob_diff,
                      "texts": len(tokens["texts"]), "fill_mask_texts": len(fills), "failures": failures}))
    return 1 if failures else 0


def same_tensors(a_path, b_path):
    a, b = load_file(a_path), load_file(b_path)
    failures = []
    if set(a) != set(b):
        failures.append(f"keys differ: only in A {sorted(set(a) - set(b))}, only in B {sorted(set(b) - set(a))}")
    for k in sorted(set(a) & set(b)):
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape:
            failures.append(f"{k}: {a[k].dtype} {tuple(a[k].shape)} vs {b[k].dtype} {tuple(b[k].shape)}")
        elif not torch.equal(a[k].view(torch.uint8) if a[k].dim() else a[k], b[k].view(torch.uint8) if b[k].dim() else b[k]):
            failures.append(f"{k}: not bit-identical")
    print(json.dumps({"tensors": len(a), "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    cmds = {"make-hf": (make_hf, 1), "check-checkpoint": (check_checkpoint, 2), "same-tensors": (same_tensors, 2)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) != 2 + cmds[sys.argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    fn, _ = cmds[sys.argv[1]]
    sys.exit(fn(*sys.argv[2:]))
