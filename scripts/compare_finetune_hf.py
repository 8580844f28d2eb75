#!/usr/bin/env python3
"""Fine-tuning quality and speed: this project's `bert-eval finetune` vs transformers'
BertForSequenceClassification, fine-tuned from the same checkpoint on the same labelled files.

  .venv/bin/python scripts/compare_finetune_hf.py --checkpoint runs/quickstart \\
      --train data/labelled/austen_train.tsv --test data/labelled/austen_test.tsv \\
      --max-seq-len 64 --epochs 4 --lr 2e-4 --seeds 3 --precision fp32

First `bert-eval finetune ... --json --precision P --threads N --seeds K` runs as a subprocess; then
transformers fine-tunes from the checkpoint bert-eval resolved (a run dir means its latest checkpoint),
and both are scored on the test file after every epoch.

Matched (the same as src/eval/finetune.cc, src/eval/labelled_data.cc, src/run/schedule.cc):
  * data: the same reader (TSV with a `text`/`label` header or headerless label<TAB>text, CSV with a
    header, JSONL); label ids = the training file's label names sorted (numerically if all are integers);
  * tokenization: BertTokenizerFast on the checkpoint's vocab.txt with its tokenizer_config.json
    (do_lower_case, strip_accents, ...); [CLS] A [SEP] (B [SEP], token types 0/1), truncated to
    --max-seq-len longest-first; each batch padded to its longest row, attention mask 0 on padding.
    --check-tokens (default on) compares every text's word pieces with `bert-vocab encode --ids`;
  * model: BertForSequenceClassification.from_pretrained(checkpoint, num_labels=K): the encoder and
    pooler from the checkpoint, classifier ~ N(0, initializer_range), bias 0; pooler -> dropout
    (hidden_dropout_prob) -> linear; dropout on while training; --probe freezes embeddings and layers
    (and keeps them in eval mode, as ours does; the pooler and classifier train);
  * training: each epoch a seeded shuffle, batches of --batch-size (the last one smaller), mean
    cross-entropy on fp32 logits, AdamW (betas 0.9/0.999, eps 1e-8, weight decay on every weight except
    names ending in ".bias" or containing "LayerNorm"), global-norm clipping at 1.0, T = ceil(n/batch) *
    epochs steps, W = ceil(warmup_ratio * T) warmup steps, lr at step s (0-based) = lr*(s+1)/W for
    s < W, else lr*(1 - (s-W)/max(1, T-W)) (a LambdaLR; transformers' get_linear_schedule_with_warmup
    starts at 0 instead); fp32, or bf16 autocast (torch.autocast("cpu"/"cuda", bfloat16)) in training
    and scoring, as ours;
  * scoring: eval mode, accuracy and macro-F1 (F1 0 for a class never predicted) after every epoch;
    reported: the last epoch's mean and sample standard deviation over seeds seed..seed+K-1;
  * --baseline: both also fine-tune a randomly initialised encoder of the same shape (ours:
    src/model/bert_model.cc, transformers: its _init_weights; both N(0, initializer_range) weights,
    LayerNorm 1/0, zero biases, zero [PAD] embedding row), compared by the same criterion;
  * speed: training examples / training seconds of each epoch (scoring excluded), averaged over
    epochs and seeds, both on torch.set_num_threads(--threads) / --threads.

Not matched, and why the criterion is statistical: the random streams. Ours derives the classifier
init, the shuffles and the dropout masks from its own seeded generators (util::Rng, a hash dropout);
transformers draws them from torch.manual_seed(seed) (classifier init, dropout) and a
torch.Generator seeded with seed (the shuffles). Same seed, different numbers, so single runs differ
by the run-to-run noise of fine-tuning. PASS means |mean_ours - mean_hf| <= max(std_ours, std_hf)
(one standard deviation over seeds) for accuracy and for macro-F1; otherwise FAIL and exit 1. Use
--seeds 3 or more (with one seed the standard deviations are 0). Also not matched: kernels (ours has
its own fused attention/GELU/LayerNorm and AdamW through ATen's fused kernel; transformers uses
sdpa and torch.optim.AdamW), so even with equal streams results would agree only to rounding.
"""
import argparse
import csv
import inspect
import io
import json
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
INTEGER = re.compile(r'^-?[0-9]{1,18}$')


# ---------------------------------------------------------------------------------------------------
# labelled files: the mirror of src/eval/labelled_data.cc

def read_labelled(path, text_col, label_col, pair_col):
    """[(text, pair, label)] from .tsv (header, or headerless label<TAB>text[<TAB>pair]), .csv (header)
    or .jsonl, as bert-eval reads them."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b'\xef\xbb\xbf'):
        raw = raw[3:]
    s = raw.decode('utf-8')
    ext = path.suffix.lower()
    out = []
    if ext in ('.jsonl', '.json'):
        for line in s.split('\n'):
            if not line.strip(' \t\r'):
                continue
            j = json.loads(line)
            label = j[label_col]
            label = label if isinstance(label, str) else json.dumps(label)
            out.append((j[text_col], j[pair_col] if pair_col else '', label))
        return out
    if ext == '.csv':
        records = [r for r in csv.reader(io.StringIO(s, newline=''), strict=True) if r]
        allow_headerless = False
    else:
        records = []
        for line in s.split('\n'):
            line = line[:-1] if line.endswith('\r') else line
            if line.strip(' \t'):
                records.append(line.split('\t'))
        allow_headerless = True
    if not records:
        raise SystemExit(f'{path}: no labelled examples')
    first = records[0]
    if text_col in first or label_col in first:
        ti, li = first.index(text_col), first.index(label_col)
        pi = first.index(pair_col) if pair_col else None
        rows = records[1:]
    elif allow_headerless:
        ti, li, pi = 1, 0, (2 if pair_col else None)
        rows = records
    else:
        raise SystemExit(f'{path}: a CSV file needs a header')
    for r in rows:
        out.append((r[ti], r[pi] if pi is not None else '', r[li]))
    return out


def label_set(train):
    labels = sorted({label for _, _, label in train})
    if all(INTEGER.match(x) for x in labels):
        labels.sort(key=int)
    return labels


# ---------------------------------------------------------------------------------------------------
# tokenization

def make_tokenizer(ckpt):
    from transformers import BertTokenizerFast
    cfg_path = Path(ckpt) / 'tokenizer_config.json'
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    # transformers >= 5 takes `vocab=` (a `vocab_file=` keyword is silently ignored there, giving a
    # tokenizer that maps everything to [UNK]); 4.x takes `vocab_file=` (tests/oracle/tokenizers_oracle.py).
    key = 'vocab' if 'vocab' in inspect.signature(BertTokenizerFast.__init__).parameters else 'vocab_file'
    tok = BertTokenizerFast(**{key: str(Path(ckpt) / 'vocab.txt')},
                             do_lower_case=cfg.get('do_lower_case', True),
                             strip_accents=cfg.get('strip_accents'),
                             tokenize_chinese_chars=cfg.get('tokenize_chinese_chars', True),
                             clean_text=cfg.get('clean_text', True))
    n_vocab = sum(1 for line in (Path(ckpt) / 'vocab.txt').read_text(encoding='utf-8').split('\n') if line)
    if len(tok) != n_vocab:
        raise SystemExit(f'{ckpt}/vocab.txt: the tokenizer holds {len(tok)} tokens, the file {n_vocab}')
    return tok


def encode(tok, examples, max_len, pairs):
    """[(input_ids, token_type_ids)] with [CLS]/[SEP], truncated longest-first to max_len."""
    a = [t for t, _, _ in examples]
    b = [p for _, p, _ in examples] if pairs else None
    enc = tok(a, b, truncation='longest_first' if pairs else True, max_length=max_len,
              return_token_type_ids=True, return_attention_mask=False)
    return list(zip(enc['input_ids'], enc['token_type_ids']))


def check_tokens(tok, texts, bert_vocab, ckpt):
    """Word pieces of every text from transformers vs `bert-vocab encode --ids`; returns mismatches."""
    if not Path(bert_vocab).exists():
        print(f'check-tokens: {bert_vocab} not found, skipped', flush=True)
        return None
    flat = [t.replace('\n', ' ').replace('\r', ' ') for t in texts]
    p = subprocess.run([str(bert_vocab), 'encode', '--vocab', str(ckpt), '--ids', '--threads', '1'],
                       input='\n'.join(flat) + '\n', capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f'bert-vocab encode failed: {p.stderr.strip()[-2000:]}')
    ours = [[int(x) for x in line.split()] for line in p.stdout.split('\n')[:len(flat)]]
    hf = tok(flat, add_special_tokens=False)['input_ids']
    bad = [i for i, (x, y) in enumerate(zip(ours, hf)) if x != y]
    if len(ours) != len(flat):
        raise SystemExit(f'bert-vocab encode gave {len(ours)} lines for {len(flat)} texts')
    for i in bad[:3]:
        print(f'check-tokens: text {i} differs: {flat[i][:120]!r}\n  ours {ours[i][:40]}\n  hf   {hf[i][:40]}')
    print(f'check-tokens: {len(flat) - len(bad)}/{len(flat)} texts tokenized identically by transformers '
          f'and bert-vocab', flush=True)
    return len(bad)


def batch(encoded, labels, idx, pad_id):
    t = max(len(encoded[i][0]) for i in idx)
    n = len(idx)
    ids = torch.full((n, t), pad_id, dtype=torch.long)
    types = torch.zeros((n, t), dtype=torch.long)
    mask = torch.zeros((n, t), dtype=torch.long)
    for r, i in enumerate(idx):
        x, y = encoded[i]
        ids[r, :len(x)] = torch.tensor(x)
        types[r, :len(y)] = torch.tensor(y)
        mask[r, :len(x)] = 1
    return ids, types, mask, torch.tensor([labels[i] for i in idx], dtype=torch.long)


# ---------------------------------------------------------------------------------------------------
# transformers side

def autocast(device, precision):
    if precision == 'fp32':
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == 'bf16' else torch.float16)


def no_decay(name):
    """src/run/optimizer.cc."""
    return name.endswith('.bias') or 'LayerNorm' in name


def lr_lambda(total, warmup):
    """src/run/schedule.cc, linear, as a multiplier of the peak lr."""
    def f(step):
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
        return 1.0 - progress
    return f


def metrics(gold, pred, k):
    correct = sum(int(g == p) for g, p in zip(gold, pred))
    f1s = []
    for c in range(k):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        n_pred = sum(1 for p in pred if p == c)
        n_gold = sum(1 for g in gold if g == c)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0)
    return {'accuracy': correct / len(gold), 'macro_f1': sum(f1s) / k}


@torch.inference_mode()
def score(model, test_enc, test_labels, a, device, pad_id, k):
    was = model.training
    model.eval()
    t0 = time.perf_counter()
    order = sorted(range(len(test_enc)), key=lambda i: len(test_enc[i][0]))  # stable, as ours
    pred = [0] * len(order)
    for s in range(0, len(order), a.eval_batch_size):
        idx = order[s:s + a.eval_batch_size]
        ids, types, mask, _ = batch(test_enc, test_labels, idx, pad_id)
        with autocast(device, a.precision):
            logits = model(input_ids=ids.to(device), token_type_ids=types.to(device),
                           attention_mask=mask.to(device)).logits
        for i, p in zip(idx, logits.float().argmax(-1).tolist()):
            pred[i] = p
    secs = time.perf_counter() - t0
    model.train(was)
    m = metrics(test_labels, pred, k)
    m['examples'] = len(test_labels)
    return m, secs


def set_train_mode(model, probe):
    model.train()
    if probe:  # as BertForSequenceClassificationImpl::train: frozen embeddings and layers never drop out
        model.bert.embeddings.eval()
        model.bert.encoder.eval()


def hf_run(ckpt, seed, train_enc, train_labels, test_enc, test_labels, k, a, device, pad_id, random_init=False):
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    if random_init:  # the baseline: transformers' own init of the same shape
        model = BertForSequenceClassification(BertConfig.from_pretrained(ckpt, num_labels=k,
                                                                         attn_implementation='sdpa'))
    else:
        model, info = BertForSequenceClassification.from_pretrained(
            ckpt, num_labels=k, attn_implementation='sdpa', output_loading_info=True)
        missing = sorted(info.get('missing_keys', []))
        if any(not m.startswith('classifier.') for m in missing):
            raise SystemExit(f'{ckpt}: weights missing besides the classifier: {missing}')
    model.to(device)
    if a.probe:
        for n, p in model.named_parameters():
            if n.startswith('bert.embeddings.') or n.startswith('bert.encoder.'):
                p.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{'params': [p for n, p in params if not no_decay(n)], 'weight_decay': a.weight_decay},
              {'params': [p for n, p in params if no_decay(n)], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    n = len(train_enc)
    total = math.ceil(n / a.batch_size) * a.epochs
    warmup = math.ceil(a.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, warmup))
    gen = torch.Generator().manual_seed(seed)
    set_train_mode(model, a.probe)
    run = {'seed': seed, 'epochs': []}
    start = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).tolist()
        loss_sum = 0.0
        for s in range(0, n, a.batch_size):
            idx = order[s:s + a.batch_size]
            ids, types, mask, lab = batch(train_enc, train_labels, idx, pad_id)
            opt.zero_grad(set_to_none=True)
            with autocast(device, a.precision):
                logits = model(input_ids=ids.to(device), token_type_ids=types.to(device),
                               attention_mask=mask.to(device)).logits
            loss = F.cross_entropy(logits.float(), lab.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        test, test_s = score(model, test_enc, test_labels, a, device, pad_id, k)
        e = {'epoch': epoch, 'train_loss': loss_sum / n, 'test': test, 'train_examples_per_s': n / train_s,
             'test_examples_per_s': len(test_enc) / test_s, 'train_seconds': train_s}
        run['epochs'].append(e)
        print(f'  hf {"baseline" if random_init else a.mode} seed {seed} epoch {epoch}/{a.epochs}: train loss {e["train_loss"]:.4f}, test accuracy '
              f'{test["accuracy"]:.4f}, macro-F1 {test["macro_f1"]:.4f} ({e["train_examples_per_s"]:.0f} train '
              f'ex/s, {e["test_examples_per_s"]:.0f} test ex/s)', flush=True)
    run['seconds'] = time.perf_counter() - start
    run['best_epoch'] = 1 + max(range(a.epochs), key=lambda i: (run['epochs'][i]['test']['accuracy'], -i))
    return run


def mean_std(v):
    return {'mean': statistics.fmean(v), 'std': statistics.stdev(v) if len(v) > 1 else 0.0}


def summarize(runs):
    last = [r['epochs'][-1] for r in runs]
    every = [e for r in runs for e in r['epochs']]
    return {'accuracy': mean_std([e['test']['accuracy'] for e in last]),
            'macro_f1': mean_std([e['test']['macro_f1'] for e in last]),
            'train_loss': mean_std([e['train_loss'] for e in last]),
            'train_examples_per_s': statistics.fmean(e['train_examples_per_s'] for e in every),
            'test_examples_per_s': statistics.fmean(e['test_examples_per_s'] for e in every),
            'runs': runs}


# ---------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', required=True, help='checkpoint dir, or run dir (its latest checkpoint)')
    ap.add_argument('--train', required=True)
    ap.add_argument('--test', required=True)
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--lr', type=float, default=5e-5)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--eval-batch-size', type=int, default=128)
    ap.add_argument('--max-seq-len', type=int, default=128)
    ap.add_argument('--warmup-ratio', type=float, default=0.1)
    ap.add_argument('--weight-decay', type=float, default=0.01)
    ap.add_argument('--seeds', type=int, default=3, help='runs per side, seeds seed..seed+K-1')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--threads', type=int, default=2, help='CPU threads for both')
    ap.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    ap.add_argument('--device', default='cpu', help='cpu or cuda (both)')
    ap.add_argument('--probe', action='store_true', help='both freeze the encoder (train pooler + classifier)')
    ap.add_argument('--baseline', action='store_true',
                    help='also compare a randomly initialised encoder of the same shape (ours: its init, '
                         'transformers: its _init_weights; the init schemes may differ, see the docstring)')
    ap.add_argument('--text-column', default='text')
    ap.add_argument('--label-column', default='label')
    ap.add_argument('--text-pair-column', default='')
    ap.add_argument('--bert-eval', default='build/src/cli/bert-eval')
    ap.add_argument('--check-tokens', action=argparse.BooleanOptionalAction, default=True,
                    help='compare the word pieces with `bert-vocab encode` (next to --bert-eval) first')
    ap.add_argument('--json-out', help='write both reports and the verdict here')
    a = ap.parse_args()
    a.mode = 'probe' if a.probe else 'fine-tune'
    if a.seeds < 2:
        print('warning: with --seeds 1 both standard deviations are 0; PASS needs equal results', flush=True)

    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    bert_eval = Path(a.bert_eval)
    if not bert_eval.is_absolute():
        bert_eval = ROOT / bert_eval

    # ---- 1. ours ----
    cmd = [str(bert_eval), 'finetune', '--checkpoint', a.checkpoint, '--train', a.train, '--test', a.test,
           '--epochs', a.epochs, '--lr', a.lr, '--batch-size', a.batch_size, '--eval-batch-size', a.eval_batch_size,
           '--max-seq-len', a.max_seq_len, '--warmup-ratio', a.warmup_ratio, '--weight-decay', a.weight_decay,
           '--seed', a.seed, '--seeds', a.seeds, '--precision', a.precision, '--threads', a.threads,
           '--device', a.device, '--text-column', a.text_column, '--label-column', a.label_column, '--json']
    if a.text_pair_column:
        cmd += ['--text-pair-column', a.text_pair_column]
    if a.probe:
        cmd.append('--probe')
    if a.baseline:
        cmd.append('--baseline')
    cmd = [str(c) for c in cmd]
    print('+ ' + ' '.join(cmd), flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress) passes through
    ours_wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f'bert-eval finetune failed with exit code {p.returncode}')
    ours_report = json.loads(p.stdout)
    model_report = ours_report['models'][0]
    ckpt = Path(model_report['checkpoint'])
    if not ckpt.is_absolute():
        ckpt = Path.cwd() / ckpt
    sides = ['pretrained'] + (['baseline'] if a.baseline else [])
    ours = {side: model_report[side] for side in sides}
    for d in ours.values():
        d['train_loss'] = mean_std([r['epochs'][-1]['train_loss'] for r in d['runs']])
    print(f'ours: {ours_wall:.1f} s wall', flush=True)

    # ---- 2. transformers ----
    train = read_labelled(a.train, a.text_column, a.label_column, a.text_pair_column)
    test = read_labelled(a.test, a.text_column, a.label_column, a.text_pair_column)
    labels = label_set(train)
    if labels != ours_report['task']['labels']:
        raise SystemExit(f'label sets differ: ours {ours_report["task"]["labels"]}, here {labels}')
    lid = {x: i for i, x in enumerate(labels)}
    unknown = sorted({x for _, _, x in test} - set(lid))
    if unknown:
        raise SystemExit(f'{a.test}: labels not in the training file: {unknown}')
    tok = make_tokenizer(ckpt)
    token_mismatches = None
    if a.check_tokens:
        texts = [t for t, _, _ in train + test] + ([q for _, q, _ in train + test] if a.text_pair_column else [])
        bert_vocab = bert_eval.parent / 'bert-vocab'
        if not bert_vocab.exists():
            bert_vocab = ROOT / 'build/src/cli/bert-vocab'
        token_mismatches = check_tokens(tok, texts, bert_vocab, ckpt)
    pairs = bool(a.text_pair_column)
    train_enc, test_enc = encode(tok, train, a.max_seq_len, pairs), encode(tok, test, a.max_seq_len, pairs)
    train_labels = [lid[x] for _, _, x in train]
    test_labels = [lid[x] for _, _, x in test]
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    print(f'transformers {transformers.__version__}, torch {torch.__version__}: {ckpt}, {len(train)} train / '
          f'{len(test)} test examples, {len(labels)} labels, {a.precision}, {a.threads} threads', flush=True)
    hf, hf_wall = {}, {}
    for side in sides:
        t0 = time.perf_counter()
        runs = [hf_run(ckpt, a.seed + i, train_enc, train_labels, test_enc, test_labels, len(labels), a, device,
                       tok.pad_token_id, random_init=side == 'baseline') for i in range(a.seeds)]
        hf_wall[side] = time.perf_counter() - t0
        hf[side] = summarize(runs)

    # ---- 3. verdict ----
    verdict = {}
    for side in sides:
        for m in ('accuracy', 'macro_f1'):
            diff = ours[side][m]['mean'] - hf[side][m]['mean']
            tol = max(ours[side][m]['std'], hf[side][m]['std'])
            verdict[f'{side} {m}'] = {'diff': diff, 'tolerance': tol, 'pass': abs(diff) <= tol}
    ok = all(v['pass'] for v in verdict.values())
    ratio = ours['pretrained']['train_examples_per_s'] / hf['pretrained']['train_examples_per_s']

    print(f'\n{a.mode} {ckpt.name}: {a.epochs} epochs, lr {a.lr:g}, batch {a.batch_size}, max_seq_len '
          f'{a.max_seq_len}, seeds {a.seed}..{a.seed + a.seeds - 1}, {a.precision}, {a.threads} threads')
    print(f'{"":<24}{"accuracy":>18}{"macro-F1":>18}{"last train loss":>18}{"train ex/s":>12}{"test ex/s":>11}')
    for side in sides:
        for name, d in (('bert-eval', ours[side]), ('transformers', hf[side])):
            label = name + ('' if side == 'pretrained' else ' baseline')
            print(f'{label:<24}{d["accuracy"]["mean"]:>9.4f} ± {d["accuracy"]["std"]:.4f}'
                  f'{d["macro_f1"]["mean"]:>9.4f} ± {d["macro_f1"]["std"]:.4f}'
                  f'{d["train_loss"]["mean"]:>9.4f} ± {d["train_loss"]["std"]:.4f}'
                  f'{d["train_examples_per_s"]:>12.1f}{d["test_examples_per_s"]:>11.1f}')
    print(f'wall: bert-eval {ours_wall:.1f} s (all runs), transformers '
          + ', '.join(f'{side} {s:.1f} s' for side, s in hf_wall.items()))
    for m, v in verdict.items():
        print(f'{m}: ours - transformers = {v["diff"]:+.4f}, one std = {v["tolerance"]:.4f}: '
              f'{"PASS" if v["pass"] else "FAIL"}')
    print(f'speed: ours / transformers = {ratio:.2f}x training examples/s '
          f'({ours["pretrained"]["train_examples_per_s"]:.1f} / {hf["pretrained"]["train_examples_per_s"]:.1f})')
    print('PASS' if ok else 'FAIL')

    if a.json_out:
        report = {'settings': vars(a), 'checkpoint': str(ckpt), 'transformers': transformers.__version__,
                  'torch': torch.__version__, 'token_mismatches': token_mismatches,
                  'ours': {'wall_seconds': ours_wall, 'report': ours_report},
                  'hf': {side: dict(hf[side], wall_seconds=hf_wall[side]) for side in sides}, 'verdict': verdict, 'speed_ratio': ratio, 'pass': ok}
        out = Path(a.json_out)
        tmp = out.with_name(out.name + '.tmp')
        tmp.write_text(json.dumps(report, indent=2) + '\n')
        tmp.replace(out)
        print(f'written {out}')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
