#!/usr/bin/env python3
"""The kill soak (issue 12): bert-train is killed at random instants and resumed until it finishes.

Each round trains bert-tiny (fp32, CPU, one thread, a checkpoint every few steps) in a fresh run
dir. KILLS times it starts `bert-train --config` (resume auto) and, at a random instant, sends
SIGKILL (70%), SIGTERM (15%) or SIGINT (15%). BERT_TEST_SAVE_DELAY_MS stretches every checkpoint
write so that many kills land inside one. After every kill:
  - the exit must be the signal's (killed, or 143/130 after a clean save) or 0 (it had finished);
    any other exit (a failed resume, a usage error) fails the soak with the log;
  - `latest`, when present, must name a checkpoint whose files all match manifest.json (size and
    crc32, checked here in Python, independently of the tool).
Then the run is finished without a kill, and its last checkpoint must be byte-identical (weights,
optimizer state, trainer state minus run_config) to an uninterrupted reference run, with no
step-*.tmp-* or step-*.old-* left behind.

  scripts/soak_kill.sh [ROUNDS] [KILLS]      # default 20 rounds x 20 kills
Prints one line per round and a summary; exits 1 on the first failure (its work dir is kept).
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = [(signal.SIGKILL, 0.70), (signal.SIGTERM, 0.15), (signal.SIGINT, 0.15)]


def fail(msg, log=None):
    print(f"[soak] FAILED: {msg}", flush=True)
    if log is not None and Path(log).exists():
        print("---- log ----\n" + Path(log).read_text(errors="replace")[-4000:], flush=True)
    sys.exit(1)


def manifest_problem(ckpt: Path):
    """None if every file of ckpt/manifest.json is there with its size and crc32, else the reason."""
    try:
        files = json.loads((ckpt / "manifest.json").read_text())["files"]
    except Exception as e:  # noqa: BLE001 - any failure to read it is the finding
        return f"manifest.json unreadable: {e}"
    for required in ("model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json", "vocab.txt"):
        if required not in files:
            return f"manifest lists no {required}"
    for name, entry in files.items():
        data = (ckpt / name).read_bytes() if (ckpt / name).is_file() else None
        if data is None:
            return f"{name} is missing"
        if len(data) != entry["size"] or (zlib.crc32(data) & 0xFFFFFFFF) != entry["crc32"]:
            return f"{name} does not match its manifest entry"
    return None


def leftovers(run_dir: Path):
    return sorted(p.name for p in run_dir.glob("step-*") if ".tmp-" in p.name or ".old-" in p.name)


def wait_for_training(proc, log: Path, offset: int) -> bool:
    """Waits until `proc` logs its first training step after byte `offset` of `log` (True), or exits."""
    while proc.poll() is None:
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                if b"info step " in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def latest_step(run_dir: Path) -> int:
    latest = run_dir / "latest"
    try:
        return int(latest.read_text().strip().split("-")[1])
    except (OSError, IndexError, ValueError):
        return 0


def trainer_state(ckpt: Path):
    state = json.loads((ckpt / "trainer_state.json").read_text())
    state.pop("run_config", None)
    return state


def write_config(work: Path, name: str, args) -> Path:
    cfg = json.loads((ROOT / "configs/bert-tiny.json").read_text())
    cfg["model"].update(max_position_embeddings=64)
    cfg["data"].update(train_files=[str(work / "train.txt")], valid_files=[str(work / "valid.txt")],
                       vocab_dir=str(work / "vocab"), max_seq_len=64)
    cfg["masking"]["max_predictions_per_seq"] = 10
    cfg["training"].update(batch_size=8, max_steps=args.steps, warmup_steps=4, precision="fp32")
    cfg["checkpoint"].update(dir=str(work / name), every=args.every, keep_last=2, resume="auto")
    cfg["runtime"].update(device="cpu", threads=1, log_every=1, eval_every=10, eval_max_batches=2)
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def default_signals():
    # A soak started in the background (`cmd &`) inherits SIGINT ignored, and bert-train would inherit
    # that until it installs its handler: reset, so a SIGINT during start-up acts as it would in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(cmd, log: Path, env):
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, preexec_fn=default_signals)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rounds", nargs="?", type=int, default=20)
    ap.add_argument("kills", nargs="?", type=int, default=20, help="kills per round")
    ap.add_argument("--steps", type=int, default=60, help="max_steps of each run")
    ap.add_argument("--every", type=int, default=4, help="checkpoint.every")
    ap.add_argument("--save-delay-ms", type=int, default=40, help="BERT_TEST_SAVE_DELAY_MS (0: none)")
    ap.add_argument("--startup-share", type=float, default=0.15, help="share of kills aimed at start-up")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    train_bin = Path(args.build) / "src/cli/bert-train"
    vocab_bin = Path(args.build) / "src/cli/bert-vocab"
    for b in (train_bin, vocab_bin):
        if not b.exists():
            fail(f"{b} is missing: build first (scripts/setup.sh)")
    corpus = ROOT / "data/corpus/train.txt"
    if not corpus.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts/make_corpus.py"), str(ROOT / "data/corpus")], check=True)

    work = Path(tempfile.mkdtemp(prefix="bert_soak_"))
    print(f"[soak] {args.rounds} rounds x {args.kills} kills, {args.steps} steps, checkpoint every {args.every}, "
          f"save delay {args.save_delay_ms} ms, seed {args.seed}, work dir {work}", flush=True)
    lines = corpus.read_text().splitlines(keepends=True)
    (work / "train.txt").write_text("".join(lines[:2500]))
    (work / "valid.txt").write_text("".join(lines[2500:2800]))
    subprocess.run([str(vocab_bin), "build", "--input", str(work / "train.txt"), "--output", str(work / "vocab"),
                    "--vocab-size", "1000"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, BERT_TEST_SAVE_DELAY_MS=str(args.save_delay_ms))

    # The uninterrupted reference (with the same save delay: it changes timing, never results). Its
    # start-up (to the first step) and training times scale the kill instants below.
    t0 = time.time()
    ref_log = work / "reference.log"
    proc = start([str(train_bin), "--config", str(write_config(work, "reference", args))], ref_log, env)
    started = wait_for_training(proc, ref_log, 0)
    ref_startup = time.time() - t0
    rc = proc.wait()
    ref_training = max(0.1, time.time() - t0 - ref_startup)
    if rc != 0 or not started:
        fail(f"the reference run exited {rc}", ref_log)
    final = f"step-{args.steps:07d}"
    ref = work / "reference" / final
    print(f"[soak] reference run: start-up {ref_startup:.1f} s, training {ref_training:.1f} s", flush=True)

    totals = {"startup": 0, "kills": 0, "SIGKILL": 0, "SIGTERM": 0, "SIGINT": 0, "inside_save": 0, "finished_early": 0,
              "resumes": 0}
    for rnd in range(1, args.rounds + 1):
        name = f"round{rnd:02d}"
        cfg = write_config(work, name, args)
        run_dir = work / name
        log = work / f"{name}.log"
        inside = 0
        signals = 0  # delivered this round; a start that finishes first is not counted
        while signals < args.kills:
            if latest_step(run_dir) == args.steps:
                break  # the run finished before all its kills: the round ends short (reported)
            offset = log.stat().st_size if log.exists() else 0
            proc = start([str(train_bin), "--config", str(cfg)], log, env)
            sig = rng.choices([s for s, _ in SIGNALS], [w for _, w in SIGNALS])[0]
            if rng.random() < args.startup_share:
                # During start-up: loading, cache checks, repair of an interrupted save, resume.
                delay = rng.uniform(0.02, ref_startup)
                totals["startup"] += 1
            else:
                # In training, timed from its first step (so a loaded machine does not shift every
                # kill into start-up): the work left is spread over the kills left.
                wait_for_training(proc, log, offset)
                work_left = ref_training * (1 - latest_step(run_dir) / args.steps)
                delay = rng.uniform(0.0, 1.5 * work_left / (args.kills - signals + 1))
            try:
                rc = proc.wait(timeout=max(delay, 0.001))
                totals["finished_early"] += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
                try:
                    rc = proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    fail(f"{name} kill {signals}: bert-train did not exit within 120 s of {sig.name}", log)
                signals += 1
                totals["kills"] += 1
                totals[sig.name] += 1
            totals["resumes"] += 1
            allowed = {0, -signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT, 130, 143}
            if rc not in allowed:
                fail(f"{name} kill {signals} ({sig.name} after {delay:.2f} s): bert-train exited {rc}", log)
            if leftovers(run_dir):
                inside += 1
            latest = run_dir / "latest"
            if latest.exists():
                target = run_dir / latest.read_text().strip()
                why = manifest_problem(target) if target.is_dir() else f"{target.name} does not exist"
                if why:
                    fail(f"{name} kill {signals}: latest names {target.name}, which is not valid: {why}", log)
        # Finish without a kill.
        rc = subprocess.run([str(train_bin), "--config", str(cfg)], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            env=env).returncode
        if rc != 0:
            fail(f"{name}: the final resume exited {rc}", log)
        got = run_dir / final
        for f in ("model.safetensors", "optimizer.safetensors"):
            if (got / f).read_bytes() != (ref / f).read_bytes():
                fail(f"{name}: {final}/{f} differs from the uninterrupted run", log)
        if trainer_state(got) != trainer_state(ref):
            fail(f"{name}: {final}/trainer_state.json differs from the uninterrupted run", log)
        if (run_dir / "latest").read_text().strip() != final:
            fail(f"{name}: latest is {(run_dir / 'latest').read_text().strip()}, expected {final}", log)
        if leftovers(run_dir):
            fail(f"{name}: left behind {leftovers(run_dir)}", log)
        totals["inside_save"] += inside
        print(f"[soak] round {rnd}/{args.rounds}: {signals} signals, {inside} kills left a half-written "
              f"checkpoint (repaired on resume); final weights and optimizer state byte-identical", flush=True)
        shutil.rmtree(run_dir)

    print(f"[soak] PASSED: {args.rounds} rounds, {totals['resumes']} starts, {totals['kills']} signals "
          f"(SIGKILL {totals['SIGKILL']}, SIGTERM {totals['SIGTERM']}, SIGINT {totals['SIGINT']}), "
          f"{totals['finished_early']} runs finished before their signal, {totals['startup']} signals aimed at start-up, "
          f"{totals['inside_save']} kills inside a checkpoint write; every resume succeeded; every final checkpoint byte-identical to the uninterrupted run",
          flush=True)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
