"""Baseline sweep under one protocol: FixedTime, MaxPressure and Advanced-MP over action intervals and minimum greens.

Usage::

    python -m experiments.traffic_baselines --scenario jinan_3x4 hangzhou_4x4 --backend cityflow --out DIR

Protocol (every row): 4 green phases (WT-ET, NT-ST, WL-EL, NL-SL; right turns always green), ``--yellow`` seconds
of yellow (the scenario's phase 0) inside the action interval whenever the phase changes, no all-red, 3600 s
episodes, average travel time with CityFlow's definition (vehicles still in the network count with their time so
far). FixedTime shows each green for ``--green`` seconds at the interval that divides it. MaxPressure and
Advanced-MP run for every action interval in ``--intervals`` and minimum green in ``--min-greens``; the best
setting per controller and scenario is marked. Writes ``<out>/baselines_<backend>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from agents.traffic import TrafficAgentConfig, make_controller
from envs.traffic import TrafficEnvSettings, TrafficSignalEnv
from envs.traffic.datasets import load_scenario
from experiments.traffic_training import run_episode

SWEPT = ("maxpressure", "advanced_mp")


def sweep(
    scenario_name: str,
    backend: str,
    intervals: list[int],
    min_greens: list[int],
    yellow: int,
    green: int,
    data_dir: str | None,
) -> list[dict]:
    """One greedy episode (seed 0) per controller and setting; rows with the settings and the metrics."""
    scenario = load_scenario(scenario_name, data_dir)
    rows = []
    settings = TrafficEnvSettings(backend=backend, yellow_time=yellow, horizon=3600)
    plans = [("fixedtime", green, 0)]
    for name in SWEPT:  # a minimum green shorter than the interval changes nothing
        plans += [(name, interval, m) for interval in intervals for m in min_greens if m == 0 or m > interval]
    envs: dict[int, TrafficSignalEnv] = {}
    try:
        for name, interval, min_green in plans:
            if interval not in envs:
                envs[interval] = TrafficSignalEnv(
                    scenario, dataclasses.replace(settings, decision_interval=interval), indicators=False
                )
            env = envs[interval]
            agent = TrafficAgentConfig(name=name, green_time=green, min_green=min_green)
            result = run_episode(env, make_controller(agent, env), seed=0, learn=False)
            row = {"scenario": scenario_name, "controller": name, "interval": interval, "min_green": min_green}
            rows.append({**row, **result})
            print(f"{scenario_name} {name:12s} interval {interval:3d} min green {min_green:3d}: "
                  f"{result['average_travel_time']:.1f} s", flush=True)  # fmt: skip
    finally:
        for env in envs.values():
            env.close()
    return rows


def best_settings(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """The row with the lowest average travel time per ``(scenario, controller)`` of a sweep."""
    best: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["scenario"], row["controller"])
        if key not in best or row["average_travel_time"] < best[key]["average_travel_time"]:
            best[key] = row
    return best


def setting(row: dict) -> str:
    """A sweep row's setting in words, e.g. ``interval 15 s, min green 20 s``."""
    return f"interval {row['interval']} s" + (f", min green {row['min_green']} s" if row["min_green"] else "")


def markdown(rows: list[dict], backend: str, yellow: int) -> str:
    """Table of every row, best setting per (scenario, controller) in bold."""
    best = best_settings(rows)
    lines = [
        f"Backend {backend}, yellow {yellow} s, 4 phases, 3600 s, seed 0; average travel time (CityFlow definition).",
        "",
        "| scenario | controller | action interval (s) | min green (s) | travel time (s) | throughput |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        mark = "**" if best[row["scenario"], row["controller"]] is row else ""
        lines.append(
            f"| {row['scenario']} | {row['controller']} | {row['interval']} | {row['min_green'] or '-'} | "
            f"{mark}{row['average_travel_time']:.1f}{mark} | {row['throughput']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.traffic_baselines", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", nargs="+", default=["jinan_3x4"])
    parser.add_argument("--backend", default="cityflow", choices=("cityflow", "sumo"))
    parser.add_argument("--intervals", type=int, nargs="+", default=[10, 15, 20])
    parser.add_argument("--min-greens", type=int, nargs="+", default=[0, 20, 30])
    parser.add_argument("--yellow", type=int, default=5)
    parser.add_argument("--green", type=int, default=30, help="FixedTime seconds per green phase")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = []
    for name in args.scenario:
        rows += sweep(name, args.backend, args.intervals, args.min_greens, args.yellow, args.green, args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"baselines_{args.backend}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / f"baselines_{args.backend}.md").write_text(markdown(rows, args.backend, args.yellow))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
