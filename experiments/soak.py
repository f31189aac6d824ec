"""Soak test of crash safety, run by hand (not in CI): random SIGKILLs of a short training, each followed by a
resume, then a check that nothing was lost.

Usage::

    nice -n 5 python -m experiments.soak --cycles 20 --out runs/soak [--docs docs/reliability.md]

Each cycle starts ``train_agent.py train`` (the first) or ``train --resume`` (the others) on a small TD3 run
(InvertedPendulum-v5, a checkpoint every rollout of 50 steps) and SIGKILLs it a random delay after its first
checkpoint write began (so kills land in training, not in the interpreter's start-up). The
training process records the start and end of every checkpoint write (``SPIKERL_TRACE``), so a kill that
landed inside a write is known exactly. After the last cycle one resume runs to the end. Checked: the run
reaches the exact total, every checkpoint left on disk holds exactly as many transitions as its step, the
final replay buffer holds the total (transitions lost = total - stored), and ``evaluations.csv`` has each
evaluation step once. The figures go to ``OUT/soak.json`` and, with ``--docs``, into the page's soak block.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from stable_baselines3.common.save_util import load_from_pkl

from experiments.run_dir import TRACE_ENV, RunDirectory, git_commit

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "actor.hidden_sizes": "[32, 32]",
    "algo.learning_starts": 100,
    "algo.batch_size": 32,
    "algo.train_freq": 50,
    "algo.gradient_steps": 10,
    "train.eval_freq": 250,
    "train.eval_episodes": 1,
    "train.checkpoint_freq": 50,
}


def replace_block(page: Path, name: str, text: str) -> None:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in ``page`` with ``text``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = page.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"error: {page} has no {start} ... {end} block")
    head, rest = content.split(start, 1)
    page.write_text(f"{head}{start}\n{text.rstrip()}\n{end}{rest.split(end, 1)[1]}")


def train_command(run: Path, total: int, fresh: bool) -> list[str]:
    command = [sys.executable, str(ROOT / "train_agent.py"), "train", "--no-progress"]
    if not fresh:
        return [*command, "--resume", str(run)]
    flags = ["--algo", "td3", "--actor", "mlp", "--env", "InvertedPendulum-v5", "--seed", "0"]
    settings = [flag for key, value in SETTINGS.items() for flag in ("--set", f"{key}={value}")]
    return [*command, *flags, *settings, "--timesteps", str(total), "--run-dir", str(run)]


def in_checkpoint_write(trace_file: Path) -> bool:
    lines = trace_file.read_text().split() if trace_file.is_file() else []
    return len(lines) >= 2 and lines[-2] == "begin"


def soak(out: Path, cycles: int, total: int, delays: tuple[float, float], seed: int) -> dict:
    """Run the soak in ``out/run`` (which must not exist); returns the figures."""
    rng = random.Random(seed)
    run_path = out / "run"
    if run_path.exists():
        raise SystemExit(f"error: {run_path} exists; give another --out")
    out.mkdir(parents=True, exist_ok=True)
    trace_file = out / "trace.txt"
    env = {**os.environ, TRACE_ENV: str(trace_file)}
    figures = {"cycles": cycles, "total_steps": total, "kills_sent": 0, "kills_in_checkpoint_write": 0,
               "kills_after_exit": 0, "resumes": 0, "checkpoint_transition_mismatches": 0}  # fmt: skip
    run = RunDirectory(run_path)
    for cycle in range(cycles):
        fresh = not run.config_file.is_file()
        trace_file.unlink(missing_ok=True)  # this cycle's checkpoint writes only
        child = subprocess.Popen(train_command(run_path, total, fresh), cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        figures["resumes"] += not fresh
        while child.poll() is None and not trace_file.is_file():  # training has begun: its first checkpoint
            time.sleep(0.05)
        time.sleep(rng.uniform(*delays))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            figures["kills_sent"] += 1
        else:
            figures["kills_after_exit"] += 1  # it finished (or failed) first
        _, err = child.communicate()
        if child.returncode not in (0, -signal.SIGKILL):
            raise SystemExit(f"cycle {cycle}: training failed (exit {child.returncode}):\n{err[-3000:]}")
        landed = child.returncode == -signal.SIGKILL and in_checkpoint_write(trace_file)
        figures["kills_in_checkpoint_write"] += landed
        for name in run.checkpoint_names():
            checkpoint = run.checkpoints_dir / name
            if (checkpoint / "replay_buffer.pkl").is_file():
                stored = load_from_pkl(checkpoint / "replay_buffer.pkl").size()
                figures["checkpoint_transition_mismatches"] += stored != int(name.split("_")[1])
        print(f"cycle {cycle + 1}/{cycles}: exit {child.returncode}, in checkpoint write: {landed}, "
              f"latest {run.checkpoint_names()[-1:] or 'none'}", flush=True)  # fmt: skip
    final = subprocess.run(train_command(run_path, total, not run.config_file.is_file()), cwd=ROOT, env=env,
                           capture_output=True, text=True)  # fmt: skip
    if final.returncode != 0:
        raise SystemExit(f"final resume failed (exit {final.returncode}):\n{final.stderr[-3000:]}")
    stored = load_from_pkl(run.latest_checkpoint().replay_buffer).size()
    steps = [int(row["timesteps"]) for row in run.evaluation_rows()]
    figures.update(
        final_steps=run.finished_steps(),
        reached_exact_total=run.finished_steps() == total,
        transitions_stored=stored,
        transitions_lost=total - stored,
        evaluation_steps_unique=len(steps) == len(set(steps)) and steps == sorted(steps),
        leftover_temporary_files=len(run.clean_interrupted()),
    )
    (out / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def markdown(figures: dict, command: str) -> str:
    rows = [
        ("kill/resume cycles", figures["cycles"]),
        ("SIGKILLs sent", figures["kills_sent"]),
        ("SIGKILLs that landed during a checkpoint write", figures["kills_in_checkpoint_write"]),
        ("resumes", figures["resumes"]),
        ("run reached the exact total", f"{figures['reached_exact_total']} ({figures['final_steps']} steps)"),
        ("checkpoints whose transitions differ from their step", figures["checkpoint_transition_mismatches"]),
        ("transitions lost", figures["transitions_lost"]),
        ("evaluation steps each recorded once", figures["evaluation_steps_unique"]),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"Command: `{command}` (commit `{git_commit()[:12]}`)\n\n| soak | result |\n|---|---|\n{table}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True, help="directory for the run and soak.json (new)")
    parser.add_argument("--timesteps", type=int, default=20000, help="total steps of the soaked run")
    parser.add_argument("--min-delay", type=float, default=0.0, help="shortest wait before a kill, seconds")
    parser.add_argument("--max-delay", type=float, default=4.0, help="longest wait before a kill, seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--docs", type=Path, help="page whose soak block gets the figures")
    args = parser.parse_args(argv)
    figures = soak(args.out.expanduser(), args.cycles, args.timesteps, (args.min_delay, args.max_delay), args.seed)
    command = (
        f"python -m experiments.soak --cycles {args.cycles} --timesteps {args.timesteps} "
        f"--min-delay {args.min_delay:g} --max-delay {args.max_delay:g} --seed {args.seed}"
    )
    text = markdown(figures, command)
    print(text)
    if args.docs is not None:
        replace_block(args.docs, "soak", text)
    return 0 if figures["reached_exact_total"] and figures["transitions_lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
