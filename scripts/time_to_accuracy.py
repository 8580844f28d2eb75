#!/usr/bin/env python3
"""Time to accuracy, measured like MLPerf's BERT benchmark: trains each config until it reaches the
highest threshold (validation masked-LM accuracy, scored at 15 % masking with 80/10/10 whatever the
training masking) or its own end (its time_budget or max_steps), then prints, per config, the
minutes (set-up included) and tokens to each threshold, the final accuracy, and fill-mask's top-1
for a few fixed sentences.

usage: time_to_accuracy.py [--thresholds 0.2,0.25,0.3,0.35] [--eval-every 100] [--set k=v ...]
                           [--out DIR] CONFIG...
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, 'build', 'src', 'cli')
SENTENCES = [
    ('And God said, Let there be [MASK]: and there was light.', 'light'),
    ('It is a truth universally [MASK], that a single man in possession of a good fortune must be in want of a wife.',
     'acknowledged'),
    ('And the LORD spake unto [MASK], saying,', 'moses'),
    ('Elizabeth could not help [MASK] at her sister.', None),
]


def first_reaching(valid_rows, threshold):
    for row in valid_rows:
        if row['accuracy'] >= threshold:
            return row
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('configs', nargs='+')
    ap.add_argument('--thresholds', default='0.2,0.25,0.3,0.35')
    ap.add_argument('--eval-every', type=int, default=100, help='validation every N steps (the time resolution)')
    ap.add_argument('--eval-max-batches', type=int, default=40)
    ap.add_argument('--set', action='append', default=[], help='extra bert-train --set overrides for every config')
    ap.add_argument('--out', default=os.path.join(ROOT, 'runs', 'time-to-accuracy'))
    args = ap.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(',')]
    results = []
    for cfg in args.configs:
        name = os.path.splitext(os.path.basename(cfg))[0]
        run_dir = os.path.join(args.out, name)
        if os.path.exists(run_dir):
            subprocess.run(['rm', '-rf', run_dir], check=True)
        cmd = [os.path.join(BIN, 'bert-train'), '--config', cfg, '--resume', 'never',
               '--set', f'checkpoint.dir={run_dir}', '--set', f'training.target_accuracy={max(thresholds)}',
               '--set', f'runtime.eval_every={args.eval_every}',
               '--set', f'runtime.eval_max_batches={args.eval_max_batches}']
        for s in args.set:
            cmd += ['--set', s]
        print(f'== {name}: {" ".join(cmd)}', flush=True)
        t0 = time.time()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            sys.stdout.write(proc.stdout[-3000:])
            sys.exit(f'time_to_accuracy: bert-train failed on {cfg} (exit {proc.returncode})')
        rows = [json.loads(l) for l in open(os.path.join(run_dir, 'metrics.jsonl')) if l.strip()]
        valid = [r for r in rows if r.get('type') == 'valid']
        fills = []
        for text, want in SENTENCES:
            out = subprocess.run([os.path.join(BIN, 'bert-eval'), 'fill-mask', '--checkpoint', run_dir, '--json',
                                  '--top-k', '1', text], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            top = '?'
            if out.returncode == 0:
                j = json.loads(out.stdout)
                j = j[0] if isinstance(j, list) else j
                masks = j.get('masks') or j.get('predictions') or []
                if masks:
                    first = masks[0]
                    cands = first.get('candidates', first) if isinstance(first, dict) else first
                    top = cands[0]['token'] if cands else '?'
            fills.append((text, want, top))
        results.append({'name': name, 'wall_s': wall, 'valid': valid, 'fills': fills})

    print()
    head = f'{"config":<22}' + ''.join(f'{"to " + format(t, ".0%"):>16}' for t in thresholds) + \
        f'{"final acc":>11}{"steps":>8}{"tokens":>10}{"wall":>9}'
    print(head)
    for r in results:
        line = f'{r["name"]:<22}'
        for t in thresholds:
            row = first_reaching(r['valid'], t)
            line += f'{(format(row["elapsed_s"] / 60, ".1f") + " min " + format(row["tokens_seen"] / 1e6, ".1f") + "M") if row else "-":>16}'
        last = r['valid'][-1] if r['valid'] else {'accuracy': float('nan'), 'step': 0, 'tokens_seen': 0}
        line += f'{last["accuracy"]:>11.4f}{last["step"]:>8}{last["tokens_seen"] / 1e6:>9.1f}M{r["wall_s"] / 60:>7.1f}m'
        print(line)
    print()
    print('fill-mask top-1 (the checkpoint each run ended with):')
    for r in results:
        for text, want, top in r['fills']:
            mark = '' if want is None else (' ok' if top == want else f' (want {want})')
            print(f'  {r["name"]:<20} {top:<14}{mark:<18} {text}')


if __name__ == '__main__':
    main()
