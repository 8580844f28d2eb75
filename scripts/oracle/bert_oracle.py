#!/usr/bin/env python3
"""Oracle for tests/model/weights_test.cc: transformers' BertForPreTraining on the same weights.

  bert_oracle.py make DIR   random tiny BertForPreTraining (every parameter perturbed, so a mis-wired
                            bias or LayerNorm shows) -> DIR/hf/ (save_pretrained), DIR/inputs.safetensors
                            (a padded batch), DIR/hf_outputs.safetensors (eval-mode logits and losses)
  bert_oracle.py check DIR  (b) DIR/cpp/ saved by C++ must load with from_pretrained reporting no
                            missing/unexpected/mismatched keys, and give DIR/cpp_outputs.safetensors;
                            round trip: DIR/roundtrip/model.safetensors (HF -> C++ load -> C++ save)
                            must hold exactly the tensors of DIR/hf/model.safetensors, bit for bit.
Prints one JSON line of measurements; exit status 1 on any failure.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForPreTraining

TOL = 1e-5


def tiny_inputs(vocab, seed=1):
    g = torch.Generator().manual_seed(seed)
    B, T = 3, 12
    ids = torch.randint(5, vocab, (B, T), generator=g)
    ids[:, 0] = 2  # [CLS]
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 9:] = 0   # padding in rows 1 and 2
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    tt = torch.zeros(B, T, dtype=torch.long)
    tt[0, 6:] = 1
    tt[1, 4:9] = 1
    labels = torch.full((B, T), -100, dtype=torch.long)
    pick = (torch.rand(B, T, generator=g) < 0.3) & (mask == 1)
    pick[0, 1] = True
    labels[pick] = torch.randint(0, vocab, (int(pick.sum()),), generator=g)
    nsp = torch.tensor([1, -100, 0])
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": mask, "mlm_labels": labels,
            "nsp_labels": nsp}


def outputs(model, x):
    with torch.no_grad():
        out = model(input_ids=x["input_ids"], token_type_ids=x["token_type_ids"],
                    attention_mask=x["attention_mask"], labels=x["mlm_labels"],
                    next_sentence_label=x["nsp_labels"])
    V = model.config.vocab_size
    mlm_loss = torch.nn.functional.cross_entropy(out.prediction_logits.reshape(-1, V), x["mlm_labels"].reshape(-1))
    nsp_loss = torch.nn.functional.cross_entropy(out.seq_relationship_logits, x["nsp_labels"])
    return {"mlm_logits": out.prediction_logits.contiguous(), "nsp_logits": out.seq_relationship_logits.contiguous(),
            "loss": out.loss.reshape([]), "mlm_loss": mlm_loss, "nsp_loss": nsp_loss}


def make(d):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=40, type_vocab_size=2, pad_token_id=0)
    model = BertForPreTraining(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model.save_pretrained(f"{d}/hf")
    x = tiny_inputs(cfg.vocab_size)
    save_file(x, f"{d}/inputs.safetensors")
    save_file(outputs(model, x), f"{d}/hf_outputs.safetensors")
    print(json.dumps({"made": d}))
    return 0


def check(d):
    failures = []
    model, info = BertForPreTraining.from_pretrained(f"{d}/cpp", output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            failures.append(f"from_pretrained {k}: {info[k]}")
    x = load_file(f"{d}/inputs.safetensors")
    ours = load_file(f"{d}/cpp_outputs.safetensors")
    theirs = outputs(model, x)
    diffs = {}
    for k, v in ours.items():
        diffs[k] = float((v.double() - theirs[k].double()).abs().max())
        if diffs[k] > TOL or not torch.isfinite(v).all():
            failures.append(f"{k}: max |C++ - transformers| = {diffs[k]:.3g} > {TOL}")
    a = load_file(f"{d}/hf/model.safetensors")
    b = load_file(f"{d}/roundtrip/model.safetensors")
    if set(a) != set(b):
        failures.append(f"round trip keys differ: only HF {sorted(set(a) - set(b))}, only C++ {sorted(set(b) - set(a))}")
    not_equal = [k for k in set(a) & set(b) if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    if not_equal:
        failures.append(f"round trip changed tensors: {sorted(not_equal)}")
    print(json.dumps({"max_abs_diff": diffs, "roundtrip_tensors": len(a), "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(make(sys.argv[2]) if sys.argv[1] == "make" else check(sys.argv[2]))
