#!/usr/bin/env python3
"""Quality at a fixed budget: this project's bert-train vs transformers' BertForPreTraining.

Both models see the same training batches (same sequences, same dynamic masks, same order: dumped by
`bert-train --dump-batches`), the same optimizer (AdamW, same betas/eps/weight decay, no decay on
biases and LayerNorm), the same schedule (linear warmup + decay, src/run/schedule.cc), clipping,
precision and number of steps. Both are then evaluated by the SAME Python code on the SAME masked
validation batches (a dump of the validation file), and ours also by `bert-eval` for reference.

  .venv/bin/python scripts/compare_quality_hf.py --config configs/quickstart.json --steps 300

Steps:
  0. vocab: data.vocab_dir of the config if it holds vocab.txt, else --vocab-dir, else built into
     OUT/vocab with `bert-vocab build` (--vocab-size, default 16000) from data.train_files.
  1. ours: bert-train --config CFG --set training.max_steps=STEPS --set checkpoint.dir=OUT/ours ...
  2. the training batches: bert-train ... --dump-batches STEPS*grad_accum --output OUT/train_batches.jsonl;
     transformers trains on them in order (torch.set_num_threads(--threads), HF's own init after
     torch.manual_seed(training.seed), attn_implementation="sdpa", MLM loss only as ours with
     full-sentences packing; with nsp-pairs the NSP loss is added as ours does).
  3. validation batches: bert-train --set data.train_files=[VALID] --dump-batches K (K = sequences //
     batch_size, at most --valid-batches); both models in eval mode, fp32: masked-token loss,
     top-1 accuracy, perplexity. bert-eval on both checkpoints for reference.
  4. a table on stdout and OUT/quality.json.

--hf-init ours (the default) starts transformers from bert-train's own initial weights (a 2-step run at
lr 0 writes them), so a recipe's initialisation (model.init = "local") is the same on both sides;
--hf-init hf uses transformers' own init after torch.manual_seed(training.seed).

--equal-time: transformers trains for the wall time ours took instead of the same number of steps: its
first 12 steps on a copy of the model time it (the last 10 count), M = ours' training seconds / that,
and its schedule (warmup, then decay) ends at step M, as a time-budgeted bert-train run's does. The
speed lead then shows as accuracy at equal time.

--verify (default on) first checks the batch reconstruction exactly: ours trained 2 steps with lr 0,
dropout 0 and fp32 keeps its initial weights, so the losses it logs for batches 0 and 1 must equal
transformers' loss on the reconstructed dumped batches with that checkpoint loaded by from_pretrained.
"""
import argparse
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
IGNORE = -100


# ---------------------------------------------------------------------------------------------------
# config and subprocess helpers

def apply_override(cfg, assignment):
    """Mirror of train::apply_override: section.key=value, value parsed as JSON, else a string."""
    key, sep, value = assignment.partition("=")
    if not sep or "." not in key:
        raise SystemExit(f"--set {assignment!r}: expected section.key=value")
    section, name = key.split(".", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    cfg.setdefault(section, {})[name] = parsed


def run(cmd, log_path, env=None):
    """Runs cmd, teeing nothing: stdout+stderr go to log_path. Returns (wall seconds, log text)."""
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        p = subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    secs = time.perf_counter() - t0
    text = Path(log_path).read_text(errors="replace")
    if p.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"command failed with exit code {p.returncode} (log: {log_path})")
    return secs, text


def sets(assignments):
    out = []
    for a in assignments:
        out += ["--set", a]
    return out


def latest_checkpoint(run_dir):
    steps = sorted(p for p in Path(run_dir).glob("step-*") if p.is_dir())
    if not steps:
        raise SystemExit(f"no step-* checkpoint in {run_dir}")
    return steps[-1]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------------
# batches: the dump's rows -> the tensors the C++ loader built

def load_batches(path, max_seq_len, pad_id, cls_id, limit=None):
    """Rebuilds HostBatch tensors from dump_batches_jsonl rows (padding is left out of the dump:
    input_ids are padded with [PAD], token_type_ids with 0, attention_mask 1 on real tokens, labels
    -100 on padding). Returns a list of dicts of [B, T] int64 tensors plus nsp labels [B]."""
    batches, rows, current = [], [], None

    def flush():
        if not rows:
            return
        b, t = len(rows), max_seq_len
        ids = torch.full((b, t), pad_id, dtype=torch.long)
        types = torch.zeros((b, t), dtype=torch.long)
        mask = torch.zeros((b, t), dtype=torch.long)
        labels = torch.full((b, t), IGNORE, dtype=torch.long)
        nsp = torch.empty(b, dtype=torch.long)
        for r, row in enumerate(rows):
            n = len(row["input_ids"])
            assert row["row"] == r, f"batch {current}: rows out of order"
            assert 0 < n <= t, f"batch {current} row {r}: {n} tokens, max_seq_len {t}"
            assert len(row["token_type_ids"]) == n and len(row["labels"]) == n
            assert row["input_ids"][0] == cls_id, f"batch {current} row {r}: does not start with [CLS]"
            assert pad_id not in row["input_ids"], f"batch {current} row {r}: [PAD] inside the real tokens"
            ids[r, :n] = torch.tensor(row["input_ids"])
            types[r, :n] = torch.tensor(row["token_type_ids"])
            mask[r, :n] = 1
            labels[r, :n] = torch.tensor(row["labels"])
            nsp[r] = row["nsp_label"]
        batches.append({"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
                        "labels": labels, "nsp": nsp})
        rows.clear()

    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if row["batch"] != current:
                flush()
                if limit is not None and len(batches) >= limit:
                    break
                assert current is None or row["batch"] == current + 1, "batches out of order"
                current = row["batch"]
            rows.append(row)
        else:
            flush()
    sizes = {b["input_ids"].shape[0] for b in batches}
    assert len(sizes) <= 1, f"batches of different sizes {sizes}"
    for b in batches:
        assert (b["labels"] != IGNORE).any(), "a batch without predictions"
        assert ((b["labels"] != IGNORE) <= (b["attention_mask"] == 1)).all(), "a label on padding"
    return batches


# ---------------------------------------------------------------------------------------------------
# transformers side

def hf_config_from(ckpt_config, attn="sdpa"):
    from transformers import BertConfig
    d = json.loads(Path(ckpt_config).read_text())
    if d.get("bert_pretrain_norm", d.get("norm", "post")) not in ("post",):
        raise SystemExit("model.norm = pre is not a transformers BertForPreTraining; compare with norm post")
    keys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
            "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id"]
    cfg = BertConfig(**{k: d[k] for k in keys if k in d}, tie_word_embeddings=True)
    cfg._attn_implementation = attn
    return cfg


def lr_at(step, t):
    """src/run/schedule.cc."""
    warmup, lr = t["warmup_steps"], t["lr"]
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if t["schedule"] == "constant":
        return lr
    floor = t.get("min_lr_ratio", 0.0) * lr
    decay = max(1, t["max_steps"] - warmup)
    progress = min(max((step - warmup) / decay, 0.0), 1.0)
    if t["schedule"] == "cosine":
        return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (lr - floor) * (1.0 - progress)


def no_decay(name):
    """src/run/optimizer.cc."""
    return name.endswith(".bias") or "LayerNorm" in name or name == "cls.predictions.bias"


def autocast(device, precision):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def pretraining_loss(model, b, device, nsp_on):
    """MLM cross-entropy over predicted positions (fp32 logits), + NSP when the batch has labels."""
    out = model(input_ids=b["input_ids"].to(device), token_type_ids=b["token_type_ids"].to(device),
                attention_mask=b["attention_mask"].to(device))
    labels = b["labels"].to(device)
    logits = out.prediction_logits.float()
    mlm = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=IGNORE)
    loss = mlm
    if nsp_on and (b["nsp"] != IGNORE).any():
        loss = loss + F.cross_entropy(out.seq_relationship_logits.float(), b["nsp"].to(device),
                                      ignore_index=IGNORE)
    return loss, mlm, logits, labels


def train_hf(model, batches, t, device, nsp_on, log_every=50, stop_after=None, quiet=False):
    """The loop of src/train/trainer.cc on transformers' model (stop_after: end after N steps)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not no_decay(n)], "weight_decay": t["weight_decay"]},
              {"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=t["lr"], betas=tuple(t["adam_betas"]), eps=t["adam_eps"])
    scaler = torch.amp.GradScaler(device.type, init_scale=65536.0, growth_interval=2000,
                                  enabled=t["precision"] == "fp16")
    accum, max_norm = t["grad_accum_steps"], (t["clip_grad_norm"] or float("inf"))
    model.train()
    tokens, curve, window = 0, [], []
    t0 = time.perf_counter()
    for step in range(stop_after or t["max_steps"]):
        lr = lr_at(step, t)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for micro in range(accum):
            b = batches[step * accum + micro]
            with autocast(device, t["precision"]):
                loss, _, _, _ = pretraining_loss(model, b, device, nsp_on)
            scaler.scale(loss / accum).backward()
            loss_sum += loss.item() / accum
            tokens += int(b["attention_mask"].sum())
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params if p.grad is not None], max_norm)
        if math.isfinite(loss_sum) and (math.isfinite(float(grad_norm)) or scaler.is_enabled()):
            scaler.step(opt)
        scaler.update()
        window.append(loss_sum)
        if (step + 1) % log_every == 0 or step + 1 == t["max_steps"]:
            elapsed = time.perf_counter() - t0
            curve.append({"step": step + 1, "loss": sum(window) / len(window), "elapsed_s": elapsed})
            if not quiet:
                    print(f"  hf step {step + 1}/{t['max_steps']} loss {sum(window) / len(window):.4f} lr {lr:.2e} "
                      f"{tokens / elapsed:.0f} tok/s", flush=True)
            window = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {"train_seconds": secs, "tokens": tokens, "tokens_per_s": tokens / secs, "curve": curve}


@torch.inference_mode()
def evaluate(model, batches, device):
    """Masked-token loss (mean over all predictions), top-1 accuracy, perplexity; fp32, eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for b in batches:
        _, _, logits, labels = pretraining_loss(model, b, device, nsp_on=False)
        flat, lab = logits.view(-1, logits.size(-1)), labels.view(-1)
        keep = lab != IGNORE
        flat, lab = flat[keep].double(), lab[keep]
        loss_sum += F.cross_entropy(flat, lab, reduction="sum").item()
        correct += int((flat.argmax(-1) == lab).sum())
        n += int(lab.numel())
    model.train(was_training)
    loss = loss_sum / n
    return {"loss": loss, "accuracy": correct / n, "perplexity": math.exp(loss), "predictions": n,
            "batches": len(batches), "sequences": sum(b["input_ids"].shape[0] for b in batches)}


# ---------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/quickstart.json")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps for both (training.max_steps)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="extra config override section.key=value for both (repeatable)")
    ap.add_argument("--out", default="runs/compare_hf", help="output dir (removed first unless --reuse)")
    ap.add_argument("--bin", default="build/src/cli", help="dir of bert-vocab, bert-train, bert-eval")
    ap.add_argument("--vocab-dir", help="use this vocabulary instead of data.vocab_dir")
    ap.add_argument("--vocab-size", type=int, default=16000, help="when the vocab has to be built")
    ap.add_argument("--valid-batches", type=int, default=60, help="cap on validation batches")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for both (runtime.threads, set_num_threads)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both models)")
    ap.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                    help="check the batch reconstruction exactly first (2 steps at lr 0)")
    ap.add_argument("--reuse", action="store_true", help="keep OUT and skip ours if it already finished")
    ap.add_argument("--hf-init", choices=["ours", "hf"], default="ours",
                    help="transformers starts from bert-train's initial weights (ours) or its own init (hf)")
    ap.add_argument("--equal-time", action="store_true",
                    help="transformers trains for ours' wall time (its schedule ends at the steps that fit)")
    a = ap.parse_args()

    os.chdir(ROOT)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    binp = Path(a.bin)
    out = Path(a.out)
    if out.exists() and not a.reuse:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    # ---- the config as bert-train will see it (overrides applied here only to find files) ----
    cfg = json.loads(Path(a.config).read_text())
    base = [f"training.max_steps={a.steps}", "runtime.eval_every=0", f"runtime.threads={a.threads}",
            f"runtime.device={a.device}", f"data.cache_dir={out / 'cache'}"] + a.overrides
    for o in base:
        apply_override(cfg, o)
    data = cfg.get("data", {})
    vocab_dir = Path(a.vocab_dir) if a.vocab_dir else Path(data.get("vocab_dir", "runs/vocab"))
    if not (vocab_dir / "vocab.txt").exists():
        vocab_dir = out / "vocab"
        if not (vocab_dir / "vocab.txt").exists():
            run([binp / "bert-vocab", "build", "--input", *data["train_files"], "--output", vocab_dir,
                 "--vocab-size", a.vocab_size], out / "vocab.log")
    base.append(f"data.vocab_dir={vocab_dir}")
    valid_files = data.get("valid_files") or []
    if not valid_files:
        raise SystemExit("the config has no data.valid_files to evaluate on")
    valid_file = valid_files[0]
    vocab = (vocab_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    tok_id = {t: i for i, t in enumerate(vocab)}
    pad_id, cls_id = tok_id["[PAD]"], tok_id["[CLS]"]

    from transformers import BertForPreTraining
    report = {"config": a.config, "steps": a.steps, "overrides": a.overrides, "threads": a.threads,
              "device": a.device, "torch": torch.__version__}
    import transformers
    report["transformers"] = transformers.__version__

    # ---- 1. ours ----
    ours_dir = out / "ours"
    done = a.reuse and (ours_dir / "metrics.jsonl").exists() and any(
        r.get("type") == "train" and r["step"] == a.steps for r in read_jsonl(ours_dir / "metrics.jsonl"))
    if not done:
        ours_wall, _ = run([binp / "bert-train", "--config", a.config,
                            *sets(base + [f"checkpoint.dir={ours_dir}", "checkpoint.resume=never"])],
                           out / "ours_train.log")
    else:
        ours_wall = None
    resolved = json.loads((ours_dir / "run_config.json").read_text())
    t = resolved["training"]
    max_seq_len, batch_size = resolved["data"]["max_seq_len"], t["batch_size"]
    nsp_on = resolved["data"]["packing"] == "nsp-pairs"
    metrics = read_jsonl(ours_dir / "metrics.jsonl")
    last_train = [r for r in metrics if r.get("type") == "train"][-1]
    ours_ckpt = latest_checkpoint(ours_dir)
    # With training.time_budget ours ends at the steps its probe fitted (a.steps is then a cap).
    timed = bool(t.get("time_budget"))
    assert last_train["step"] == a.steps or (timed and last_train["step"] <= a.steps), \
        f"ours stopped at step {last_train['step']}"
    a.steps = last_train["step"]
    ours = {"train_seconds": last_train["elapsed_s"], "process_seconds": ours_wall,
            "tokens": last_train["tokens_seen"],
            "tokens_per_s": last_train["tokens_seen"] / last_train["elapsed_s"],
            "checkpoint": str(ours_ckpt),
            "in_training_valid": [r for r in metrics if r.get("type") == "valid"],
            "curve": [{"step": r["step"], "loss": r["loss"], "elapsed_s": r["elapsed_s"]}
                      for r in metrics if r.get("type") == "train"]}

    # ---- 2. the same training batches ----
    n_train = a.steps * t["grad_accum_steps"]
    base.append("training.time_budget=0")  # the dumps and checks below take fixed steps
    train_dump = out / "train_batches.jsonl"
    run([binp / "bert-train", "--config", a.config, *sets(base + [f"checkpoint.dir={out / 'dump'}"]),
         "--dump-batches", n_train, "--output", train_dump], out / "dump_train.log")

    # ---- 3a. validation batches (one pass over the validation file, ragged last batch dropped) ----
    valid_dump = out / "valid_batches.jsonl"
    _, log = run([binp / "bert-train", "--config", a.config,
                  *sets(base + [f"checkpoint.dir={out / 'dump'}", f"data.train_files={json.dumps([valid_file])}"]),
                  "--dump-batches", a.valid_batches, "--output", valid_dump], out / "dump_valid.log")
    m = re.search(r"data: (\d+) tokens, (\d+) sequences", log)
    n_valid = min(a.valid_batches, int(m.group(2)) // batch_size) if m else a.valid_batches
    valid_batches = load_batches(valid_dump, max_seq_len, pad_id, cls_id, limit=n_valid)
    print(f"validation: {len(valid_batches)} batches of {batch_size} from {valid_file}", flush=True)

    train_batches = load_batches(train_dump, max_seq_len, pad_id, cls_id)
    assert len(train_batches) == n_train, f"{len(train_batches)} dumped batches, expected {n_train}"

    # ---- verify the reconstruction: ours at its initial weights vs transformers on the same batches ----
    if a.verify:
        vdir = out / "verify"
        shutil.rmtree(vdir, ignore_errors=True)  # metrics.jsonl appends
        run([binp / "bert-train", "--config", a.config,
             *sets(base + [f"checkpoint.dir={vdir}", "checkpoint.resume=never", "training.max_steps=2",
                           "training.lr=0", "training.warmup_steps=0", "training.precision=fp32",
                           "training.grad_accum_steps=1", "model.hidden_dropout=0", "model.attention_dropout=0",
                           "runtime.log_every=1", "runtime.eval_every=0", "checkpoint.every=2",
                           f"data.valid_files={json.dumps([])}"])],
            out / "verify_train.log")
        logged = [r["loss"] for r in read_jsonl(vdir / "metrics.jsonl") if r.get("type") == "train"]
        vm = BertForPreTraining.from_pretrained(latest_checkpoint(vdir), attn_implementation="sdpa").to(device).eval()
        with torch.inference_mode():
            mine = [pretraining_loss(vm, b, device, nsp_on)[0].item() for b in train_batches[:2]]
        diffs = [abs(x - y) for x, y in zip(mine, logged)]
        print(f"verify: bert-train losses {logged}, transformers on the dumped batches {mine}", flush=True)
        report["verify"] = {"bert_train_loss": logged, "python_loss": mine, "max_abs_diff": max(diffs)}
        if max(diffs) > 1e-3:
            raise SystemExit(f"verify FAILED: the reconstructed batches give other losses (diff {max(diffs):.2e})")
        # The loop too: from the same initial weights, without dropout, in fp32, both take K steps of the
        # real schedule on the same batches; the per-step losses must agree (optimizer, groups, schedule,
        # clipping, accumulation).
        k = min(5, a.steps)
        vdir2 = out / "verify_loop"
        shutil.rmtree(vdir2, ignore_errors=True)
        run([binp / "bert-train", "--config", a.config,
             *sets(base + [f"checkpoint.dir={vdir2}", "checkpoint.resume=never", f"training.init_from={latest_checkpoint(vdir)}",
                           "training.precision=fp32", "model.hidden_dropout=0", "model.attention_dropout=0",
                           "runtime.log_every=1", f"runtime.stop_after_steps={k}", f"data.valid_files={json.dumps([])}"])],
            out / "verify_loop_train.log")
        logged = [r["loss"] for r in read_jsonl(vdir2 / "metrics.jsonl") if r.get("type") == "train"]
        hf_loop = train_hf(vm.train(), train_batches, dict(t, precision="fp32"), device, nsp_on, log_every=1,
                           stop_after=k, quiet=True)
        mine = [c["loss"] for c in hf_loop["curve"]]
        diffs = [abs(x - y) for x, y in zip(mine, logged)]
        print(f"verify loop: bert-train losses {[round(x, 5) for x in logged]}, transformers "
              f"{[round(x, 5) for x in mine]}", flush=True)
        report["verify_loop"] = {"bert_train_loss": logged, "python_loss": mine, "max_abs_diff": max(diffs)}
        if len(logged) != k or max(diffs) > 1e-2:
            print(f"WARNING: the {k}-step loops differ by up to {max(diffs):.2e} (see quality.json)", flush=True)
        del vm

    # ---- 2b. transformers trains on the dumped batches ----
    torch.manual_seed(t["seed"])
    hf_cfg = hf_config_from(ours_ckpt / "config.json")
    if a.hf_init == "ours":  # bert-train's step-0 weights: 2 steps at lr 0 leave them unchanged
        idir = out / "init"
        shutil.rmtree(idir, ignore_errors=True)
        run([binp / "bert-train", "--config", a.config,
             *sets(base + [f"checkpoint.dir={idir}", "checkpoint.resume=never", "training.max_steps=2",
                           "training.lr=0", "training.warmup_steps=0", "checkpoint.every=2",
                           f"data.valid_files={json.dumps([])}"])],
            out / "init_train.log")
        hf_model = BertForPreTraining.from_pretrained(latest_checkpoint(idir), config=hf_cfg).to(device)
    else:
        hf_model = BertForPreTraining(hf_cfg).to(device)
    t_hf = dict(t)
    if a.equal_time:
        probe = train_hf(copy.deepcopy(hf_model), train_batches, t, device, nsp_on, log_every=1, stop_after=12,
                         quiet=True)["curve"]
        step_s = (probe[11]["elapsed_s"] - probe[1]["elapsed_s"]) / 10
        t_hf["max_steps"] = max(1, min(a.steps, int(ours["train_seconds"] / step_s)))
        print(f"equal time: transformers takes {step_s:.3f} s a step; {t_hf['max_steps']} steps fit in ours' "
              f"{ours['train_seconds']:.1f} s (ours: {a.steps} steps)", flush=True)
    print(f"transformers: {sum(p.numel() for p in hf_model.parameters()) / 1e6:.2f}M parameters, "
          f"{t_hf['max_steps']} steps, {t['precision']}, init {a.hf_init}", flush=True)
    hf = train_hf(hf_model, train_batches, t_hf, device, nsp_on, log_every=resolved["runtime"]["log_every"])
    hf["steps"] = t_hf["max_steps"]
    ours["steps"] = a.steps
    report["hf_init"], report["equal_time"] = a.hf_init, a.equal_time
    del train_batches
    hf_dir = out / "hf"
    hf_model.save_pretrained(hf_dir)
    shutil.copy(vocab_dir / "vocab.txt", hf_dir / "vocab.txt")

    # ---- 3b. the same evaluation for both ----
    ours_model = BertForPreTraining.from_pretrained(ours_ckpt, attn_implementation="sdpa").to(device)
    ours["valid"] = evaluate(ours_model, valid_batches, device)
    hf["valid"] = evaluate(hf_model, valid_batches, device)
    for name, d, ck in (("ours", ours, ours_ckpt), ("hf", hf, hf_dir)):
        try:
            _, txt = run([binp / "bert-eval", "--checkpoint", ck, "--data", valid_file, "--json",
                          "--seed", t["seed"], "--batch-size", batch_size, "--threads", a.threads,
                          "--device", a.device, "--cache-dir", out / "cache", "--output", out / f"bert_eval_{name}.json"],
                         out / f"bert_eval_{name}.log")
            d["bert_eval"] = json.loads((out / f"bert_eval_{name}.json").read_text())["overall"]
        except SystemExit as e:
            d["bert_eval"] = {"error": str(e)}

    report["ours"], report["hf"] = ours, hf
    report["valid_batches"] = {"file": valid_file, "batches": len(valid_batches), "batch_size": batch_size}
    (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")

    # ---- 4. the table ----
    print()
    print(f"{'model':<14}{'steps':>7}{'train s':>10}{'tok/s':>10}{'valid loss':>12}{'accuracy':>10}{'ppl':>10}"
          f"{'bert-eval loss':>16}{'acc':>8}")
    for name, d in (("bert-pretrain", ours), ("transformers", hf)):
        v, be = d["valid"], d.get("bert_eval", {})
        bel = f"{be['loss']:.4f}" if "loss" in be else "-"
        bea = f"{be['accuracy']:.4f}" if "accuracy" in be else "-"
        print(f"{name:<14}{d['steps']:>7}{d['train_seconds']:>10.1f}{d['tokens_per_s']:>10.0f}{v['loss']:>12.4f}"
              f"{v['accuracy']:>10.4f}{v['perplexity']:>10.2f}{bel:>16}{bea:>8}")
    diff = ours["valid"]["accuracy"] - hf["valid"]["accuracy"]
    print(f"\nvalidation: {ours['valid']['predictions']} masked tokens in {len(valid_batches)} batches; "
          f"accuracy ours - transformers = {diff:+.4f}; written {out / 'quality.json'}")


if __name__ == "__main__":
    main()
