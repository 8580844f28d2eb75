#!/usr/bin/env python3
"""Oracle for tests/eval/finetune_test.cc: transformers' side of `bert-eval finetune`.

  classifier_oracle.py check-model MODEL_DIR INPUTS.safetensors
      MODEL_DIR (written by the C++ BertForSequenceClassification::save_pretrained, the code behind
      --output-model) must load in transformers' BertForSequenceClassification with no missing and no
      unexpected keys, and reproduce the C++ logits in INPUTS.safetensors ("logits", on "input_ids",
      "token_type_ids", "attention_mask") within 1e-5 in eval mode. AutoTokenizer must load it.
  classifier_oracle.py predict MODEL_DIR TEST.tsv MAX_SEQ_LEN
      Loads MODEL_DIR with AutoTokenizer + AutoModelForSequenceClassification (as a user would),
      predicts every example of a `text<TAB>label` TSV with a header (truncation to MAX_SEQ_LEN) and
      prints the confusion matrix [gold][predicted] in the order of config.id2label.
Prints one JSON line; exit status 1 on any failure.
"""
import csv
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

LOGIT_TOL = 1e-5


def check_model(model_dir, inputs_path):
    model, info = BertForSequenceClassification.from_pretrained(model_dir, output_loading_info=True)
    model.eval()
    t = load_file(inputs_path)
    with torch.no_grad():
        logits = model(input_ids=t["input_ids"], token_type_ids=t["token_type_ids"],
                       attention_mask=t["attention_mask"]).logits
    diff = (logits - t["logits"]).abs().max().item()
    AutoTokenizer.from_pretrained(model_dir)
    out = {"missing": sorted(info["missing_keys"]), "unexpected": sorted(info["unexpected_keys"]),
           "max_abs_diff": diff, "id2label": model.config.id2label, "num_labels": model.config.num_labels}
    print(json.dumps(out))
    ok = not info["missing_keys"] and not info["unexpected_keys"] and diff <= LOGIT_TOL
    return 0 if ok else 1


def predict(model_dir, test_path, max_len):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    model.eval()
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    label2id = {v: k for k, v in id2label.items()}
    with open(test_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    k = len(id2label)
    confusion = [[0] * k for _ in range(k)]
    with torch.no_grad():
        for i in range(0, len(rows), 64):
            batch = rows[i:i + 64]
            enc = tok([r["text"] for r in batch], truncation=True, max_length=max_len, padding=True,
                      return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            for r, p in zip(batch, pred):
                confusion[label2id[r["label"]]][p] += 1
    print(json.dumps({"confusion": confusion, "labels": [id2label[i] for i in range(k)]}))
    return 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "check-model":
        return check_model(sys.argv[2], sys.argv[3])
    if len(sys.argv) >= 5 and sys.argv[1] == "predict":
        return predict(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
