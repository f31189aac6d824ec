"""Speed of the blimp pieces, as ratios against baselines timed in the same run (``python -m experiments.blimp_bench``).

1. One CMA-ES generation's evaluation: population 50, an 80 s window (800 ticks), N = 40, on one torch thread,
   for the ``lif`` and ``iwta`` networks: batched population vs the loop over individuals (target: well under 1 s
   per generation batched, i.e. generations per minute on one core).
2. Ray: the same generation split over 2 Ray workers vs 1 in-process evaluator (speed-up; needs >= 2 free cores).
3. The MuJoCo environment: control ticks per second (20 physics steps each) under the deployed PID.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from agents.blimp.controllers import fly
from agents.blimp.datasets import ImitationData
from agents.blimp.fitness import PopulationEvaluator
from agents.blimp.pid import PID
from agents.blimp.snn import SNNArchitecture
from envs.blimp import BlimpAltitudeEnv
from experiments.blimp_evolution import RayEvaluator

POPULATION, TICKS = 50, 800


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_data(rng: np.random.Generator) -> ImitationData:
    errors = np.cumsum(rng.normal(0, 0.02, (2, TICKS)), axis=1)
    return ImitationData(errors, 9 * errors, errors[0], 9 * errors[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m experiments.blimp_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = synthetic_data(rng)
    results: dict = {}
    for variant in ("lif", "iwta"):
        arch = SNNArchitecture(variant=variant)
        genomes = np.clip(arch.initial_genome(rng) + 0.1 * rng.standard_normal((POPULATION, arch.size)), 0, 1)
        evaluator = PopulationEvaluator(arch, data)
        batched = median_seconds(lambda e=evaluator, g=genomes: e.evaluate(g, 0), args.repeats)
        looped = median_seconds(lambda e=evaluator, g=genomes: [e.evaluate(g[i : i + 1], 0) for i in range(len(g))], 1)
        results[variant] = {
            "s_per_generation": batched,
            "generations_per_min": 60 / batched,
            "loop_over_batch": looped / batched,
        }
        print(f"{variant:5s} genes {arch.size:5d}: {batched:.3f} s/generation ({60 / batched:.0f} gen/min), "
              f"per-individual loop {looped / batched:.1f}x slower")  # fmt: skip
        if variant == "lif" and not args.skip_ray:
            ray_eval = RayEvaluator(functools.partial(PopulationEvaluator, arch, data), workers=2)
            two = median_seconds(lambda r=ray_eval, g=genomes: r.evaluate(g, 0), args.repeats)
            results["ray_2_workers"] = {"s_per_generation": two, "speedup_vs_1": batched / two}
            print(f"lif with 2 Ray workers: {two:.3f} s/generation, speed-up {batched / two:.2f}x vs 1 process")
    env = BlimpAltitudeEnv(profile="paper-pd")
    start = time.perf_counter()
    flight = fly(env, PID(), 0, {"step": 0.5})
    ticks_per_s = len(flight["z"]) / (time.perf_counter() - start)
    results["env_ticks_per_s"] = ticks_per_s
    print(f"MuJoCo blimp + PID: {ticks_per_s:.0f} control ticks/s ({ticks_per_s / 10:.0f}x real time)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
