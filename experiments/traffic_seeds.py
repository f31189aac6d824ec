"""Multi-seed traffic comparison: train every learning agent for every seed and scenario, evaluate, aggregate.

Usage::

    python -m experiments.traffic_seeds --config experiments/mtlight_cityflow.yaml --out RUNS \\
        --scenario jinan_3x4 hangzhou_4x4 --seeds 0 1 2

Per (scenario, agent, seed) the run directory is ``<out>/<scenario>_<label>_s<seed>``; a finished run (its
evaluation exists) is skipped and an interrupted one resumes from its latest checkpoint, so the command can be
rerun until everything is done. Agents: MTLight, its DQN ablation and MTLight with the spiking Q-network. Each
trained run gets one greedy evaluation episode (seed 1000) with the baselines for comparison (FixedTime,
MaxPressure, Advanced-MP at their config settings). Writes ``<out>/summary.md``: per scenario and controller,
mean ± std over seeds of the evaluation travel time, and the learning curves (travel time per training
episode, mean over seeds) as ``<out>/<scenario>_curves.png``. ``--set`` overrides pass through (e.g. a smoke run:
``--set train.episodes=1 --set env.horizon=300``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.aggregate import mean_std
from experiments.cli import main as cli
from experiments.traffic_baselines import SWEPT, best_settings, setting

AGENTS = {"mtlight": [], "dqn": ["--agent", "dqn"], "mtlight_spiking": ["--set", "agent.q_network=spiking"]}
BASELINES = ("fixedtime", "maxpressure", "advanced_mp")
EVAL_SEED = 1000


def run_all(
    config: Path,
    out: Path,
    scenarios: list[str],
    seeds: list[int],
    overrides: list[str],
    agents: Sequence[str] = tuple(AGENTS),
) -> list[tuple[str, str, Path]]:
    """Train (or resume, or skip) and evaluate every run of ``agents`` (labels of :data:`AGENTS`); returns
    ``(scenario, agent label, run directory)``."""
    unknown = [label for label in agents if label not in AGENTS]
    if unknown:
        raise SystemExit(f"unknown agent(s) {', '.join(unknown)}; valid: {', '.join(AGENTS)}")
    runs = []
    sets = [item for value in overrides for item in ("--set", value)]
    for scenario in scenarios:
        for label in agents:
            flags = AGENTS[label]
            for seed in seeds:
                run = out / f"{scenario}_{label}_s{seed}"
                runs.append((scenario, label, run))
                if (run / "traffic_eval.json").is_file():
                    continue
                if (run / "checkpoints" / "LATEST").is_file():
                    command = ["traffic", "--resume", str(run)]
                else:
                    command = ["traffic", "--config", str(config), "--scenario", scenario, "--seed", str(seed)]
                    command += [*flags, *sets, "--run-dir", str(run)]
                if not (run / "model.zip").is_file() and cli([*command, "--no-progress"]) != 0:
                    raise SystemExit(f"training failed: {' '.join(command)}")
                compare = ["--compare", *BASELINES] if seed == seeds[0] and label == agents[0] else []
                if cli(["traffic-eval", str(run), "--seed", str(EVAL_SEED), *compare]) != 0:
                    raise SystemExit(f"evaluation failed: {run}")
    return runs


def summarise(runs: list[tuple[str, str, Path]], out: Path, sweep: list[dict] | None = None) -> str:
    """Markdown summary (mean ± sample std over seeds, and each run's value) and learning-curve plots; returns the
    Markdown text. ``sweep``: rows of a baseline sweep (:mod:`experiments.traffic_baselines`) whose best setting per
    scenario and controller is added as a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.traffic_training import TrafficRunDirectory

    table: dict[str, dict[str, list[float]]] = {}
    curves: dict[str, dict[str, list[np.ndarray]]] = {}
    for scenario, agent, run in runs:
        if not (run / "traffic_eval.json").is_file():
            continue
        results = json.loads((run / "traffic_eval.json").read_text())
        for name, episodes in results.items():
            if name in BASELINES and agent != runs[0][1]:
                continue  # deterministic baselines: counted once
            key = agent if name not in BASELINES else name
            table.setdefault(scenario, {}).setdefault(key, []).append(episodes[0]["average_travel_time"])
        rows = TrafficRunDirectory(run).read_episodes()
        curve = np.array([float(row["average_travel_time"]) for row in rows])
        curves.setdefault(scenario, {}).setdefault(agent, []).append(curve)
    best = best_settings(sweep or [])
    lines = [
        "| scenario | controller | runs | average travel time (s), mean ± std | per run |",
        "|---|---|---|---|---|",
    ]
    for scenario, controllers in table.items():
        for name, values in controllers.items():
            each = ", ".join(f"{v:.1f}" for v in values)
            spread = "{:.1f} ± {:.1f}".format(*mean_std(values))
            lines.append(f"| {scenario} | {name} | {len(values)} | {spread} | {each} |")
        for (swept, controller), row in best.items():
            if swept == scenario and controller in SWEPT:
                value = f"{row['average_travel_time']:.1f}"
                lines.append(f"| {scenario} | {controller}, best of sweep ({setting(row)}) | 1 | {value} | {value} |")
        figure, axis = plt.subplots(figsize=(7, 4))
        for agent, series in curves[scenario].items():
            length = min(len(c) for c in series)
            stacked = np.stack([c[:length] for c in series])
            episodes = np.arange(1, length + 1)
            axis.plot(episodes, stacked.mean(axis=0), label=f"{agent} ({len(series)} seeds)")
            axis.fill_between(episodes, stacked.min(axis=0), stacked.max(axis=0), alpha=0.2)
        axis.set_xlabel("training episode")
        axis.set_ylabel("average travel time (s)")
        axis.set_title(scenario)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / f"{scenario}_curves.png", dpi=120)
        plt.close(figure)
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


SWEEP_KEYS = ("scenario", "controller", "interval", "min_green", "average_travel_time")


def read_sweep(path: Path) -> list[dict]:
    """The rows of a baseline sweep's JSON; raises ``SystemExit`` with one line naming a missing, malformed or
    foreign file."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"--baselines {path}: cannot read a sweep ({type(err).__name__}: {err})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and set(SWEEP_KEYS) <= set(row) for row in rows):
        keys = ", ".join(SWEEP_KEYS)
        raise SystemExit(f"--baselines {path}: not a traffic_baselines sweep (a list of rows with {keys})")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.traffic_seeds", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("mtlight_cityflow.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenario", nargs="+", default=["jinan_3x4", "hangzhou_4x4"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), help=f"any of {', '.join(AGENTS)} (default: all)")
    parser.add_argument(
        "--baselines", type=Path, metavar="JSON", help="a baseline sweep's JSON (experiments.traffic_baselines, same "
        "backend): its best MaxPressure and Advanced-MP setting per scenario join the table"
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sweep = read_sweep(args.baselines) if args.baselines else None  # checked before hours of training
    runs = run_all(args.config, args.out, args.scenario, args.seeds, args.set, args.agents)
    print(summarise(runs, args.out, sweep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
