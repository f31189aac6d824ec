"""Traffic evidence: learning curves (average travel time per training episode) and a Markdown results table.

Usage::

    python -m experiments.traffic_results RUN_DIR [RUN_DIR ...] --out docs/results/traffic --name grid2x2

Each run directory comes from ``train_agent.py traffic``. A baseline run (FixedTime, MaxPressure) contributes its
episodes as evaluations (a table row and a horizontal line). A learning run contributes its training curve and, if it
holds ``traffic_eval.json`` (written by
``train_agent.py traffic-eval ... --compare fixedtime maxpressure``), its greedy evaluation and the baselines'
results (same scenario, same seeds) go into the table and appear as horizontal lines in the plot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.traffic.config import LEARNING_AGENTS  # noqa: E402
from experiments.traffic_training import TrafficRunDirectory, format_metrics_table  # noqa: E402


def run_label(run: TrafficRunDirectory) -> str:
    config = run.load_config()
    spiking = " (spiking Q)" if config.agent.q_network == "spiking" and config.agent.name in LEARNING_AGENTS else ""
    return f"{config.agent.name}{spiking}"


def write_results(runs: list[Path], out: Path, name: str) -> str:
    """Write ``<out>/<name>_curves.png`` and ``<out>/<name>.md``; returns the Markdown text."""
    out.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(7, 4))
    table: dict[str, list[dict[str, float]]] = {}
    baselines: dict[str, float] = {}
    header = ""
    for path in runs:
        run = TrafficRunDirectory(path)
        config = run.load_config()
        label = run_label(run)
        rows = run.read_episodes()
        header = f"{config.scenario.name}, {config.env.backend}, {config.env.horizon} s episodes"
        if config.agent.name not in LEARNING_AGENTS:  # a baseline run: its episodes are evaluations
            table[label] = [{key: float(value) for key, value in row.items()} for row in rows]
            baselines[label] = float(np.mean([float(row["average_travel_time"]) for row in rows]))
            continue
        episodes = [int(r["episode"]) for r in rows]
        axis.plot(
            episodes, [float(r["average_travel_time"]) for r in rows], marker="o", ms=3, label=f"{label} (training)"
        )
        evaluation = path / "traffic_eval.json"
        if evaluation.is_file():
            for controller, values in json.loads(evaluation.read_text()).items():
                if controller == config.agent.name:
                    table[f"{label} (greedy, after {len(rows)} training episodes)"] = values
                else:
                    table[controller] = values
                    baselines[controller] = float(np.mean([v["average_travel_time"] for v in values]))
    for (controller, value), style in zip(sorted(baselines.items()), ("--", ":", "-.")):
        axis.axhline(value, color="k", linestyle=style, linewidth=1, label=controller)
    axis.set_xlabel("training episode")
    axis.set_ylabel("average travel time (s)")
    axis.set_title(header)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / f"{name}_curves.png", dpi=110)
    plt.close(figure)
    text = f"### {header}\n\n{format_metrics_table(table)}\n\n![learning curves]({name}_curves.png)\n"
    (out / f"{name}.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.traffic_results", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/results/traffic"))
    parser.add_argument("--name", required=True, help="file stem of the outputs")
    args = parser.parse_args(argv)
    print(write_results(args.runs, args.out, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
