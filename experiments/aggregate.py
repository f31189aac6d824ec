"""Aggregate run directories over seeds: the results table (Markdown + CSV), learning curves with
mean ± 95 % confidence bands over seeds, performance ratios against a baseline actor, few-seed statistics
(:mod:`experiments.statistics`: IQM and probability of improvement with bootstrap intervals, performance
profile), the commit that trained each row, firing rates and energy.

Statistics per (env, algo, framework, actor), each as mean ± sample std (ddof = 1) over seeds:

- **final**: mean return of the last periodic evaluation;
- **best**: highest periodic evaluation mean return;
- **max** (the papers' statistic, docs/methods.md): per seed, the maximum of the best periodic evaluation and
  the returns of single re-run episodes of the final model (``summary.json``, written by
  :mod:`experiments.run`). The papers also re-run the best-epoch checkpoint, which runs here do not keep;
- **ratio vs baseline**: mean statistic of the actor / that of the baseline actor on the same env;
  **APR** (average performance ratio) is the mean of those ratios over the environments both ran.

Usage::

    python -m experiments.aggregate RUN_DIR [RUN_DIR ...] --out docs/results/cpu_budget [--readme docs/results.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.results import RunCurve, plot_curves, read_run
from experiments.statistics import (
    markdown_statistics,
    mean_confidence_band,
    normalised_scores,
    plot_performance_profile,
)

SUMMARY_FILE = "summary.json"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
STATISTICS = ("final", "best", "max")


def paper_max(eval_means: list[float], rerun_returns: list[float]) -> float:
    """The papers' per-seed score: max over periodic evaluations and single re-run episodes."""
    if not eval_means:
        raise ValueError("paper_max needs at least one evaluation")
    return float(max([*eval_means, *rerun_returns]))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


@dataclass
class SeedResult:
    """One run: its learning curve and, if the runner summarised it, re-run returns and activity."""

    curve: RunCurve
    rerun_returns: list[float] = field(default_factory=list)
    energy: dict[str, Any] | None = None
    commit: str = "unknown"  # git commit that trained the run (metadata.json)

    def statistic(self, name: str) -> float:
        if name == "final":
            return self.curve.means[-1]
        if name == "best":
            return max(self.curve.means)
        if name == "max":
            return paper_max(self.curve.means, self.rerun_returns)
        raise ValueError(f"unknown statistic {name!r}; valid: {', '.join(STATISTICS)}")


def read_seed_result(path: Path) -> SeedResult:
    summary_file = path / SUMMARY_FILE
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    metadata_file = path / "metadata.json"
    commit = (
        json.loads(metadata_file.read_text()).get("git_commit", "unknown") if metadata_file.is_file() else "unknown"
    )
    return SeedResult(read_run(path), list(summary.get("rerun_returns", [])), summary.get("energy"), commit)


@dataclass
class Group:
    """All seeds of one (env, algo, framework, actor)."""

    env: str
    algo: str
    framework: str
    actor: str
    seeds: list[SeedResult]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.env, self.algo, self.framework

    def stat(self, name: str) -> tuple[float, float]:
        return mean_std([seed.statistic(name) for seed in self.seeds])

    @property
    def steps(self) -> int:
        return min(seed.curve.steps[-1] for seed in self.seeds)

    def energy(self, key: str) -> float | None:
        values = [seed.energy[key] for seed in self.seeds if seed.energy]
        return float(np.mean(values)) if values else None

    def firing_rates(self) -> dict[str, float]:
        rates: dict[str, list[float]] = defaultdict(list)
        for seed in self.seeds:
            for layer, rate in (seed.energy or {}).get("firing_rates", {}).items():
                rates[layer].append(rate)
        return {layer: float(np.mean(values)) for layer, values in rates.items()}

    # plot_curves interface: mean ± std over seeds at the evaluation points all seeds reached
    @property
    def label(self) -> str:
        suffix = ", rllib" if self.framework == "rllib" else ""
        return f"{self.actor} ({self.algo}{suffix}, {len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''})"

    def _curve_matrix(self) -> np.ndarray:
        length = min(len(seed.curve.means) for seed in self.seeds)
        return np.asarray([seed.curve.means[:length] for seed in self.seeds])

    @property
    def curve_steps(self) -> list[int]:
        return self.seeds[0].curve.steps[: self._curve_matrix().shape[1]]

    @property
    def means(self) -> list[float]:
        return self._curve_matrix().mean(0).tolist()

    @property
    def confidence(self) -> list[float]:
        """Half-width of the 95 % confidence interval of the mean curve over seeds."""
        return mean_confidence_band(self._curve_matrix())[1].tolist()

    @property
    def commits(self) -> str:
        """Short commits that trained the seeds (``-dirty`` marks an uncommitted tree)."""
        short = sorted({s.commit[:7] + ("-dirty" if s.commit.endswith("-dirty") else "") for s in self.seeds})
        return " ".join(short)


@dataclass
class _Band:
    env: str
    label: str
    steps: list[int]
    means: list[float]
    stds: list[float]


def group_results(results: list[SeedResult]) -> list[Group]:
    groups: dict[tuple[str, str, str, str], list[SeedResult]] = defaultdict(list)
    for result in results:
        c = result.curve
        groups[(c.env, c.algo, c.framework, c.actor)].append(result)
    return [
        Group(env, algo, framework, actor, sorted(seeds, key=lambda s: s.curve.seed))
        for (env, algo, framework, actor), seeds in sorted(groups.items())
    ]


def performance_ratios(groups: list[Group], baseline: str, statistic: str) -> dict[tuple, float]:
    """``(env, algo, framework, actor) -> mean statistic / baseline's mean statistic`` on the same env."""
    reference = {g.key: g.stat(statistic)[0] for g in groups if g.actor == baseline}
    ratios = {}
    for group in groups:
        base = reference.get(group.key)
        if base is not None and base != 0:
            ratios[(*group.key, group.actor)] = group.stat(statistic)[0] / base
    return ratios


def average_performance_ratio(ratios: dict[tuple, float]) -> dict[tuple[str, str, str], tuple[float, int]]:
    """APR: ``(algo, framework, actor) -> (mean ratio over environments, number of environments)``."""
    by_actor: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for (_env, algo, framework, actor), ratio in ratios.items():
        by_actor[(algo, framework, actor)].append(ratio)
    return {key: (float(np.mean(values)), len(values)) for key, values in sorted(by_actor.items())}


def _pm(value: tuple[float, float], seeds: int) -> str:
    """``mean ± std``, or the value alone for a single seed (no spread to show)."""
    return f"{value[0]:.1f} ± {value[1]:.1f}" if seeds > 1 else f"{value[0]:.1f}"


def _algo(group: Group | tuple) -> str:
    algo, framework = (group.algo, group.framework) if isinstance(group, Group) else group[:2]
    return algo + (" (rllib)" if framework == "rllib" else "")


def markdown_report(groups: list[Group], baseline: str) -> str:
    """Main table, APR table and firing-rate table as Markdown."""
    ratios = {name: performance_ratios(groups, baseline, name) for name in ("final", "max")}
    lines = [
        f"| env | algo | actor | seeds | steps | final return | best return | max statistic | ratio vs {baseline} "
        "(final / max) | SOPs/action | energy/action | × MLP actor | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        key = (*g.key, g.actor)
        ratio = " / ".join(f"{ratios[n][key]:.2f}" if key in ratios[n] else "–" for n in ("final", "max"))
        sops, energy, relative = g.energy("sops_per_action"), g.energy("energy_pj_per_action"), None
        if energy is not None:
            relative = g.energy("energy_ratio_vs_mlp")
        seeds = ",".join(str(s.curve.seed) for s in g.seeds)
        lines.append(
            f"| {g.env} | {_algo(g)} | {g.actor} | {seeds} | {g.steps:,} | {_pm(g.stat('final'), len(g.seeds))} "
            f"| {_pm(g.stat('best'), len(g.seeds))} | {_pm(g.stat('max'), len(g.seeds))} | {ratio} "
            f"| {f'{sops:,.0f}' if sops else '–'} | {f'{energy / 1e3:.1f} nJ' if energy is not None else '–'} "
            f"| {f'{relative:.2f}' if relative is not None else '–'} | {g.commits} |"
        )
    aprs = {name: average_performance_ratio(ratios[name]) for name in ("final", "max")}
    lines += [
        "",
        f"| algo | actor | envs | APR vs {baseline} (final) | APR vs {baseline} (max) |",
        "|---|---|---|---|---|",
    ]
    for key, (value, count) in aprs["final"].items():
        lines.append(f"| {_algo(key)} | {key[2]} | {count} | {value:.1%} | {aprs['max'][key][0]:.1%} |")
    spiking = [g for g in groups if g.firing_rates()]
    if spiking:
        layers = list(spiking[0].firing_rates())
        lines += ["", f"| env | algo | actor | {' | '.join(layers)} |", "|---|---|---|" + "---|" * len(layers)]
        for g in spiking:
            rates = g.firing_rates()
            lines.append(
                f"| {g.env} | {_algo(g)} | {g.actor} | " + " | ".join(f"{rates.get(n, 0.0):.3f}" for n in layers) + " |"
            )
    return "\n".join(lines) + "\n"


def write_csv(groups: list[Group], baseline: str, path: Path) -> None:
    ratios = {name: performance_ratios(groups, baseline, name) for name in STATISTICS}
    fields = ["env", "algo", "framework", "actor", "seeds", "steps"]
    for name in STATISTICS:
        fields += [f"{name}_mean", f"{name}_std", f"{name}_ratio_vs_{baseline}"]
    fields += ["sops_per_action", "energy_pj_per_action", "energy_ratio_vs_mlp", "firing_rates", "commits"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for g in groups:
            row: dict[str, Any] = {
                "env": g.env, "algo": g.algo, "framework": g.framework, "actor": g.actor,
                "seeds": " ".join(str(s.curve.seed) for s in g.seeds), "steps": g.steps,
            }  # fmt: skip
            for name in STATISTICS:
                mean, std = g.stat(name)
                ratio = ratios[name].get((*g.key, g.actor))
                row.update({f"{name}_mean": round(mean, 2), f"{name}_std": round(std, 2)})
                row[f"{name}_ratio_vs_{baseline}"] = round(ratio, 4) if ratio is not None else ""
            for key in ("sops_per_action", "energy_pj_per_action", "energy_ratio_vs_mlp"):
                value = g.energy(key)
                row[key] = round(value, 4) if value is not None else ""
            row["firing_rates"] = json.dumps({k: round(v, 4) for k, v in g.firing_rates().items()})
            row["commits"] = g.commits
            writer.writerow(row)


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the README results markers with ``block``."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block to replace")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{block.rstrip()}\n{README_END}{tail}")


def seed_scores(groups: list[Group], statistic: str) -> dict[tuple[str, str], dict[int, float]]:
    """``{(env, actor): {seed: statistic}}``; the actor is labelled with its algorithm when several ran."""
    several = len({(g.algo, g.framework) for g in groups}) > 1
    return {
        (g.env, f"{g.actor} ({_algo(g)})" if several else g.actor): {
            s.curve.seed: s.statistic(statistic) for s in g.seeds
        }
        for g in groups
    }


def statistics_report(groups: list[Group], baseline: str, out: Path, title: str) -> str:
    """IQM / probability-of-improvement tables for the final and max statistics and a performance-profile
    PNG (final return); empty when no environment has the baseline."""
    final = seed_scores(groups, "final")
    try:
        normalised = normalised_scores(final, baseline)
    except ValueError:
        return ""
    plot_performance_profile(
        normalised, out / "performance_profile.png", f"{title}: final return, {baseline}-normalised"
    )
    sections = [markdown_statistics(seed_scores(groups, name), baseline, name) for name in ("final", "max")]
    return "\n".join(sections) + "\n![performance profile](performance_profile.png)\n"


def aggregate(run_dirs: list[Path], out: Path, baseline: str, title: str, readme: Path | None = None) -> str:
    """Write ``results.md``, ``results.csv``, one ``<env>.png`` per environment and
    ``performance_profile.png`` to ``out``; return the Markdown (also placed in ``readme``'s results
    block when given). Unfinished runs (no ``DONE``: still training, or stopped) are left out, with a message
    naming them; raises ``ValueError`` when no run has finished."""
    results = {path: read_seed_result(path) for path in run_dirs}
    unfinished = [f"{path} ({r.curve.steps[-1]:,} of {r.curve.planned_steps:,} steps)"
                  for path, r in results.items() if not r.curve.finished]  # fmt: skip
    if unfinished:
        print(f"left out {len(unfinished)} unfinished run(s): {', '.join(unfinished)}", file=sys.stderr)
    finished = [r for r in results.values() if r.curve.finished]
    if not finished:
        raise ValueError("no finished run to aggregate (a run is finished once it has written DONE)")
    groups = group_results(finished)
    out.mkdir(parents=True, exist_ok=True)
    bands = [_Band(g.env, g.label, g.curve_steps, g.means, g.confidence) for g in groups]
    images = plot_curves(bands, out, title, ylabel="evaluation return (mean ± 95 % CI over seeds)")  # type: ignore[arg-type]
    report = markdown_report(groups, baseline)
    statistics = statistics_report(groups, baseline, out, title)
    (out / "results.md").write_text(report + ("\n" + statistics if statistics else ""))
    write_csv(groups, baseline, out / "results.csv")
    if readme is not None:
        links = " ".join(f"![{p.stem}]({Path(os.path.relpath(p, readme.parent)).as_posix()})" for p in images)
        update_readme(readme, f"{report}\n{links}\n")
    return report + ("\n" + statistics if statistics else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--baseline", default="mlp", help="actor of the performance ratios (default mlp)")
    parser.add_argument("--title", default="evaluation return", help="plot title suffix")
    parser.add_argument("--readme", type=Path, help="also replace the results block of this Markdown page")
    args = parser.parse_args(argv)
    try:
        print(aggregate(args.runs, args.out, args.baseline, args.title, args.readme))
    except (OSError, ValueError) as err:  # a missing or empty run, no finished run
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
