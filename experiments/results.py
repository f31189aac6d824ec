"""Results from run directories: learning-curve PNGs and a Markdown table of evaluation returns.

Usage::

    python -m experiments.results RUN_DIR [RUN_DIR ...] --out docs/results --title "TD3, 100k steps"

Runs are grouped by environment (one PNG per environment, one curve per actor/algorithm). The table lists,
per run: final evaluation return (mean ± std over the evaluation episodes), best evaluation return, steps,
wall time and, for spiking actors, synaptic operations per action.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.run_dir import RunDirectory  # noqa: E402


@dataclass
class RunCurve:
    env: str
    label: str
    steps: list[int]
    means: list[float]
    stds: list[float]
    wall_time_s: float
    sops: float
    actor: str = ""
    algo: str = ""
    seed: int = 0
    framework: str = "sb3"
    planned_steps: int = 0  # train.timesteps of the run's config
    finished: bool = True  # training finished (DONE written); else still training or stopped


def read_run(path: Path) -> RunCurve:
    run = RunDirectory(path)
    config = run.load_config()
    if not run.evaluations_file.is_file():
        raise FileNotFoundError(f"{run.evaluations_file} is missing: the run has not been evaluated yet")
    rows = list(csv.DictReader(run.evaluations_file.open()))
    if not rows:
        raise ValueError(f"{run.evaluations_file} has no evaluation rows")
    return RunCurve(
        env=config.env.id,
        label=f"{config.actor.name} ({config.algo.name}, seed {config.train.seed})",
        steps=[int(r["timesteps"]) for r in rows],
        means=[float(r["mean_return"]) for r in rows],
        stds=[float(r["std_return"]) for r in rows],
        wall_time_s=float(rows[-1]["wall_time_s"]),
        sops=float(rows[-1]["sops_per_action"]),
        actor=config.actor.name,
        algo=config.algo.name,
        seed=config.train.seed,
        framework=config.train.framework,
        planned_steps=config.train.timesteps,
        finished=run.finished_steps() is not None,
    )


def plot_curves(
    curves: list[RunCurve], out_dir: Path, title: str, ylabel: str = "evaluation return (mean ± std over episodes)"
) -> list[Path]:
    """One PNG per environment with mean ± std evaluation return against environment steps.

    ``curves`` may be any objects with ``env``, ``label``, ``steps``, ``means`` and ``stds``."""
    by_env: dict[str, list[RunCurve]] = defaultdict(list)
    for curve in curves:
        by_env[curve.env].append(curve)
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for env, group in sorted(by_env.items()):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for curve in sorted(group, key=lambda c: c.label):
            low = [m - s for m, s in zip(curve.means, curve.stds)]
            high = [m + s for m, s in zip(curve.means, curve.stds)]
            ax.plot(curve.steps, curve.means, marker="o", markersize=3, label=curve.label)
            ax.fill_between(curve.steps, low, high, alpha=0.2)
        ax.set_title(f"{env}: {title}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{env}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def markdown_table(curves: list[RunCurve]) -> str:
    lines = [
        "| env | actor (algo, seed) | steps | final return | best return | SOPs/action | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sorted(curves, key=lambda c: (c.env, c.label)):
        sops = f"{c.sops:,.0f}" if c.sops > 0 else "–"
        lines.append(
            f"| {c.env} | {c.label} | {c.steps[-1]:,} | {c.means[-1]:.1f} ± {c.stds[-1]:.1f} | {max(c.means):.1f} "
            f"| {sops} | {c.wall_time_s / 60:.0f} min |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="output directory")
    parser.add_argument("--title", default="evaluation return", help="plot title suffix")
    args = parser.parse_args(argv)
    curves = [read_run(path) for path in args.runs]
    for path in plot_curves(curves, args.out, args.title):
        print(f"wrote {path}")
    table = markdown_table(curves)
    (args.out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
