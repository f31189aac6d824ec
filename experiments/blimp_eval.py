"""Closed-loop comparison on the blimp (design reference §7): PID, evolved SNN (PD + I) and an RL spiking actor fly
the same profiles with the same seeds; writes ``comparison.csv`` / ``comparison.md``, flight plots and the
evolution runs' learning curves."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from agents.blimp.controllers import Controller, Flight, SummedController, fly
from agents.blimp.evolution import EvolutionRun
from agents.blimp.pid import PID, PIDGains
from envs.blimp.env import BlimpAltitudeEnv
from envs.blimp.profiles import PAPER_PD_STEPS, PROFILES
from experiments.blimp_metrics import METRIC_NAMES, flight_metrics
from experiments.run_dir import write_atomic

TABLE_COLUMNS = (
    ("rmse_cm", "RMSE cm"),
    ("overshoot_up_cm", "OS up cm"),
    ("overshoot_down_cm", "OS down cm"),
    ("sse_cm", "SSE cm"),
    ("sse_signed_cm", "signed SSE cm"),
    ("limit_cycle_p2p_cm", "cycle p2p cm"),
    ("rise_time_s", "rise s"),
    ("settling_time_s", "settle s"),
    ("flips", "flips"),
    ("floor_contact_fraction", "landed"),
    ("spikes_per_s_hidden", "hidden spikes/s"),
    ("sops_per_s", "SOPs/s"),
)


class RLController:
    """An SB3 actor trained on ``spikerl/BlimpAltitude-v0`` (error observation, action in [-1, 1])."""

    def __init__(self, run_dir: Path) -> None:
        from experiments.run_dir import RunDirectory
        from experiments.training import load_model

        run = RunDirectory(run_dir)
        config = run.load_config()
        if not config.env.id.startswith("spikerl/BlimpAltitude"):
            raise ValueError(f"{run_dir} was trained on {config.env.id}, not the blimp environment")
        self.model = load_model(run.final_model, config)
        self.network = getattr(self.model, "actor_network", None)
        self.sops = 0.0

    def reset(self) -> None:
        self.sops = 0.0

    def __call__(self, error: float) -> float:
        action, _ = self.model.predict(np.array([error], np.float32), deterministic=True)
        if self.network is not None and hasattr(self.network, "activity"):
            self.sops += self.network.activity().sops
        return float(np.asarray(action).reshape(-1)[0]) * 10.0

    def activity(self) -> dict[str, float]:
        return {"sops": self.sops}


def build_arms(pd_run: Path | None, i_run: Path | None, rl_run: Path | None) -> dict[str, Controller]:
    """Controllers to compare: deployed PID and its PD part always; the SNNs and RL actor when runs are given."""
    arms: dict[str, Controller] = {"pid": PID(), "pd": PID(PIDGains(ki=0.0))}
    snn_pd = EvolutionRun(pd_run).load_controller() if pd_run else None
    snn_i = EvolutionRun(i_run).load_controller() if i_run else None
    if snn_pd is not None:
        arms["snn-pd"] = snn_pd
    if snn_i is not None:
        arms["pd+snn-i"] = SummedController(PID(PIDGains(ki=0.0)), snn_i)
    if snn_pd is not None and snn_i is not None:
        arms["snn-pd+snn-i"] = SummedController(snn_pd, snn_i)
    if rl_run is not None:
        arms["rl"] = RLController(rl_run)
    return arms


def episodes(profile: str, repeats: int, seed: int) -> list[tuple[int, dict]]:
    """(seed, reset options) of every episode of ``profile``; ``paper-pd`` repeats each of its five steps."""
    if profile not in PROFILES:
        raise ValueError(f"unknown reference profile {profile!r}; valid: {', '.join(PROFILES)}")
    if profile == "paper-pd":
        return [
            (seed + 100 * i + r, {"profile": profile, "step": step})
            for i, step in enumerate(PAPER_PD_STEPS)
            for r in range(repeats)
        ]
    return [(seed + r, {"profile": profile}) for r in range(repeats)]


def run_comparison(
    arms: dict[str, Controller], profiles: list[str], repeats: int, seed: int, randomize: bool, out: Path
) -> str:
    """Fly every arm on every profile's episodes; write the table, CSV and plots into ``out``; return the table."""
    from tqdm import tqdm

    for profile in profiles:
        episodes(profile, 1, seed)  # validates the names before any flying
    env = BlimpAltitudeEnv(randomize=randomize, terminate_on_contact=False)  # a landed blimp may take off again
    rows, examples = [], {}
    jobs = [(p, a) for p in profiles for a in arms]
    for profile, arm in tqdm(jobs, desc="closed loop", unit="arm"):
        metrics = []
        for index, (episode_seed, options) in enumerate(episodes(profile, repeats, seed)):
            flight = fly(env, arms[arm], episode_seed, options)
            metrics.append(flight_metrics(flight))
            if index == (len(PAPER_PD_STEPS) * repeats * 3 // 5 if profile == "paper-pd" else 0):
                examples[(profile, arm)] = flight  # paper-pd: the first -0.5 m step
        row = {"profile": profile, "arm": arm, "episodes": len(metrics)}
        for name in METRIC_NAMES:
            values = np.array([m[name] for m in metrics])
            finite = values[np.isfinite(values)]
            row[f"{name}_mean"] = float(finite.mean()) if len(finite) else float("nan")
            row[f"{name}_std"] = float(finite.std()) if len(finite) else float("nan")
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_randomized" if randomize else ""
    with (out / f"comparison{suffix}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    write_atomic(out / f"comparison{suffix}.md", table + "\n")
    for profile in profiles:
        plot_flights({arm: examples[(profile, arm)] for arm in arms}, out / f"flight_{profile}{suffix}.png", profile)
    return table


def markdown_table(rows: list[dict]) -> str:
    """Mean ± std per (profile, arm) of the headline metrics."""

    def cell(row: dict, name: str) -> str:
        mean, std = row[f"{name}_mean"], row[f"{name}_std"]
        if not math.isfinite(mean):
            return "–"
        digits = 0 if abs(mean) >= 100 else 1 if abs(mean) >= 10 else 2
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    header = "| profile | arm | n | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (3 + len(TABLE_COLUMNS))]
    for row in rows:
        cells = [cell(row, name) for name, _ in TABLE_COLUMNS]
        lines.append(f"| {row['profile']} | {row['arm']} | {row['episodes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_flights(flights: dict[str, Flight], path: Path, title: str) -> None:
    """Altitude vs reference (top) and motor command (bottom) of one episode per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[2, 1])
    first = next(iter(flights.values()))
    top.plot(first["time"], first["reference"], "k--", lw=1.2, label="reference")
    for arm, flight in flights.items():
        top.plot(flight["time"], flight["z"], lw=1.0, label=arm)
        bottom.plot(flight["time"], flight["u"], lw=0.7, label=arm)
    top.set_ylabel("altitude z (m)")
    top.set_title(f"blimp closed loop: {title}")
    top.legend(ncol=3, fontsize=8)
    bottom.set_ylabel("command u (code units)")
    bottom.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(runs: dict[str, Path], path: Path) -> None:
    """Train (generation best) and best-on-test loss (imitation or closed loop) over generations of evolution runs;
    runs with a single progress row (a scored start genome, ``generations: 0``) have no curve and are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    progress = {name: list(csv.DictReader(EvolutionRun(d).progress_file.open())) for name, d in runs.items()}
    curves = {name: rows for name, rows in progress.items() if len(rows) > 1}
    if not curves:
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for ax, (name, rows) in zip(axes[0], curves.items()):
        fitness = EvolutionRun(runs[name]).load_config().fitness
        generation = [int(r["generation"]) for r in rows]
        for key, label in (("train_loss_best", "train (gen. best)"), ("test_loss_cma_mean", "test (CMA mean)")):
            ax.plot(generation, [float(r[key]) for r in rows], lw=0.8, label=label)
        ax.plot(generation, [float(r["best_test_loss"]) for r in rows], "k", lw=1.5, label="best on test")
        ax.set_title(name)
        ax.set_xlabel("generation")
        closed_loop = fitness.kind == "closed-loop"
        ax.set_ylabel(f"MAE + {fitness.steady_state_weight:g}·SSE (m)" if closed_loop else "MAE + (1 - ρ)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
