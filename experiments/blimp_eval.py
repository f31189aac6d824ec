"""Closed-loop comparison on the blimp (docs/blimp.md): PID, evolved SNN (PD + I) and an RL spiking actor fly
the same profiles with the same seeds; writes ``comparison.csv`` / ``comparison.md``, per-episode metrics
(``episodes.csv``), a Wilcoxon signed-rank test of every arm against the PID per metric (``wilcoxon.csv`` /
``wilcoxon.md``, episodes paired by seed), flight plots and the evolution runs' learning curves."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from agents.blimp.controllers import Controller, Flight, SummedController, fly
from agents.blimp.pid import PID, PIDGains
from envs.blimp.env import BlimpAltitudeEnv
from envs.blimp.params import BlimpParameters
from envs.blimp.profiles import PAPER_PD_STEPS, PROFILES
from experiments.blimp_evolution import EvolutionRun
from experiments.blimp_metrics import METRIC_NAMES, flight_metrics
from experiments.config import ConfigError
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
        from experiments.frameworks import load_policy
        from experiments.run_dir import RunDirectory

        run = RunDirectory(run_dir)
        config = run.load_config()
        if not config.env.id.startswith("spikerl/BlimpAltitude"):
            raise ConfigError(f"{run_dir} was trained on {config.env.id}, not the blimp environment")
        self.model = load_policy(run, "final")
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


WILCOXON_METRICS = ("sse_cm", "overshoot_up_cm", "overshoot_down_cm", "settling_time_s", "flips", "rmse_cm")
BASELINE_ARM = "pid"


def build_arms(
    pd_run: Path | None, i_run: Path | None, rl_run: Path | None, only: list[str] | None = None
) -> dict[str, Controller]:
    """Controllers to compare: deployed PID and its PD part always; the SNNs and RL actor when runs are given (the
    SNN-PD alone, with the PID's exact I term and with the SNN-I);
    ``only`` keeps the named arms (unknown names raise, listing the available ones)."""
    arms: dict[str, Controller] = {"pid": PID(), "pd": PID(PIDGains(ki=0.0))}
    snn_pd = EvolutionRun(pd_run).load_controller() if pd_run else None
    snn_i = EvolutionRun(i_run).load_controller() if i_run else None
    if snn_pd is not None:
        arms["snn-pd"] = snn_pd
        arms["snn-pd+i"] = SummedController(snn_pd, PID(PIDGains(kp=0.0, kd=0.0)))  # the SNN-PD with the exact I term
    if snn_i is not None:
        arms["pd+snn-i"] = SummedController(PID(PIDGains(ki=0.0)), snn_i)
    if snn_pd is not None and snn_i is not None:
        arms["snn-pd+snn-i"] = SummedController(snn_pd, snn_i)
    if rl_run is not None:
        arms["rl"] = RLController(rl_run)
    if only is not None:
        unknown = [name for name in only if name not in arms]
        if unknown:
            raise ConfigError(f"unknown arm(s) {', '.join(unknown)}; available with these runs: {', '.join(arms)}")
        arms = {name: arms[name] for name in only}
    return arms


def evaluation_params(jitter: float = 0.0, long_ticks: float = 0.0, dropout: float = 0.0) -> BlimpParameters:
    """Nominal blimp with control-period jitter (half-width, s), a fraction of 0.3 s ticks and sensor dropouts."""
    return dataclasses.replace(
        BlimpParameters(), control_jitter=jitter, long_tick_probability=long_ticks, dropout_probability=dropout
    )


def wilcoxon_rows(per_episode: list[dict], metrics: tuple[str, ...] = WILCOXON_METRICS) -> list[dict]:
    """Two-sided Wilcoxon signed-rank test of every arm against :data:`BASELINE_ARM` per profile and metric.

    Args:
        per_episode: rows with ``profile``, ``arm``, ``seed`` and the metric values of one episode each.

    Returns:
        Rows ``profile, arm, metric, n, arm_median, pid_median, p_value`` (episodes paired by seed; ``n`` pairs
        where both are finite; p = NaN when fewer than 2 pairs or all differences are zero).
    """
    from scipy.stats import wilcoxon

    index = {(r["profile"], r["arm"], r["seed"]): r for r in per_episode}
    rows = []
    profiles = list(dict.fromkeys(r["profile"] for r in per_episode))
    for profile in profiles:
        arms = list(dict.fromkeys(r["arm"] for r in per_episode if r["profile"] == profile))
        seeds = [r["seed"] for r in per_episode if r["profile"] == profile and r["arm"] == BASELINE_ARM]
        for arm in arms:
            if arm == BASELINE_ARM or not seeds:
                continue
            for metric in metrics:
                pairs = np.array(
                    [(index[(profile, arm, s)][metric], index[(profile, BASELINE_ARM, s)][metric]) for s in seeds]
                )
                pairs = pairs[np.isfinite(pairs).all(axis=1)]
                differences = pairs[:, 0] - pairs[:, 1] if len(pairs) else np.empty(0)
                p = float("nan")
                if len(pairs) >= 2 and np.any(differences != 0):
                    p = float(wilcoxon(pairs[:, 0], pairs[:, 1]).pvalue)
                rows.append({
                    "profile": profile, "arm": arm, "metric": metric, "n": len(pairs),
                    "arm_median": float(np.median(pairs[:, 0])) if len(pairs) else float("nan"),
                    "pid_median": float(np.median(pairs[:, 1])) if len(pairs) else float("nan"),
                    "p_value": p,
                })  # fmt: skip
    return rows


def wilcoxon_table(rows: list[dict]) -> str:
    """Markdown: per profile and arm, median (arm vs PID) and p-value of each tested metric."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    header = "| profile | arm | n | " + " | ".join(f"{m}: arm / PID (p)" for m in metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    groups = list(dict.fromkeys((r["profile"], r["arm"]) for r in rows))
    for profile, arm in groups:
        cells, n = [], 0
        for metric in metrics:
            match = [r for r in rows if (r["profile"], r["arm"], r["metric"]) == (profile, arm, metric)]
            if not match or not match[0]["n"]:
                cells.append("–")
                continue
            r = match[0]
            n = max(n, r["n"])
            p = "–" if not math.isfinite(r["p_value"]) else f"{r['p_value']:.2g}"
            cells.append(f"{r['arm_median']:.3g} / {r['pid_median']:.3g} ({p})")
        lines.append(f"| {profile} | {arm} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def episodes(profile: str, repeats: int, seed: int) -> list[tuple[int, dict]]:
    """(seed, reset options) of every episode of ``profile``; ``paper-pd`` repeats each of its five steps."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown reference profile {profile!r}; valid: {', '.join(PROFILES)}")
    if profile == "paper-pd":
        return [
            (seed + 100 * i + r, {"profile": profile, "step": step})
            for i, step in enumerate(PAPER_PD_STEPS)
            for r in range(repeats)
        ]
    return [(seed + r, {"profile": profile}) for r in range(repeats)]


def run_comparison(
    arms: dict[str, Controller],
    profiles: list[str],
    repeats: int,
    seed: int,
    randomize: bool,
    out: Path,
    params: BlimpParameters | None = None,
    suffix: str = "",
) -> str:
    """Fly every arm on every profile's episodes (on ``params``, default nominal); write the table, CSVs, the
    Wilcoxon tests against the PID and the plots into ``out`` (file names end in ``suffix``); return the table."""
    from tqdm import tqdm

    for profile in profiles:
        episodes(profile, 1, seed)  # validates the names before any flying
    env = BlimpAltitudeEnv(randomize=randomize, terminate_on_contact=False, params=params)  # a landed blimp may rise
    rows, examples, per_episode = [], {}, []
    jobs = [(p, a) for p in profiles for a in arms]
    for profile, arm in tqdm(jobs, desc="closed loop", unit="arm"):
        metrics = []
        for index, (episode_seed, options) in enumerate(episodes(profile, repeats, seed)):
            flight = fly(env, arms[arm], episode_seed, options)
            metrics.append(flight_metrics(flight))
            per_episode.append({"profile": profile, "arm": arm, "seed": episode_seed, **metrics[-1]})
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
    suffix = ("_randomized" if randomize else "") + suffix
    tests = wilcoxon_rows(per_episode)
    for name, table_rows in (("comparison", rows), ("episodes", per_episode), ("wilcoxon", tests)):
        if not table_rows:
            continue
        with (out / f"{name}{suffix}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table_rows[0]))
            writer.writeheader()
            writer.writerows(table_rows)
    if tests:
        write_atomic(out / f"wilcoxon{suffix}.md", wilcoxon_table(tests) + "\n")
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
