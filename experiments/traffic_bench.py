"""Traffic environment speed: our environment vs the raw simulator running the same controller, in one run.

``python -m experiments.traffic_bench`` (also part of ``make bench``). Scenario: Jinan 3x4 real flow (from
``--data-dir``, else ``$SPIKERL_TRAFFIC_DATA``, else a ``shared/data/traffic`` folder beside the checkout, else the
default data directory; a generated 3x4 grid stands in when the data is absent), 3600 simulated seconds,
decision interval 10 s, yellow 3 s, FixedTime with 30 s greens, one thread.

* **raw**: the simulator alone with the same controller logic: every 10 s set each intersection's phase
  (yellow for 3 s when the phase changes, then the green) and read every watched lane's vehicle count;
* **env**: :class:`~envs.traffic.env.TrafficSignalEnv` with the FixedTime controller through
  :func:`~experiments.traffic_training.run_episode` (observations, rewards, metrics included).

Steps/s = simulated seconds per CPU second of this process (all its threads): on a shared machine wall time
mostly measures the other jobs, CPU time the work. Runs alternate raw, env, raw, env, ... and each side keeps
its fastest episode. Target: env / raw >= 0.5 on CityFlow (reported for SUMO too, where libsumo's step
dominates). The environment's wall time per simulated hour (fastest episode) is printed per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.traffic import FixedTimeController
from envs.traffic import DatasetMissingError, GridSpec, TrafficEnvSettings, TrafficSignalEnv, grid_scenario
from envs.traffic.cityflow_backend import cityflow_available
from envs.traffic.datasets import DATA_ENV_VAR, load_scenario
from envs.traffic.scenario import YELLOW_PHASE, Scenario
from experiments.traffic_training import run_episode

HORIZON, INTERVAL, YELLOW, GREEN = 3600, 10, 3, 30
BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "traffic"
TARGET = 0.5  # env steps/s >= this x raw engine steps/s (CityFlow)


def fixed_time_phase(decision: int, n_phases: int) -> int:
    """Green-phase index FixedTime shows at decision step ``decision`` (``GREEN`` s per phase)."""
    return (decision // (GREEN // INTERVAL)) % n_phases


def raw_cityflow(scenario: Scenario, lanes: list[str], phases: tuple[int, ...]) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one raw CityFlow episode with the FixedTime logic and lane-count reads."""
    from envs.traffic.cityflow_backend import _build_engine

    engine = _build_engine(scenario, 0, 1)
    ids = [inter.id for inter in scenario.intersections]
    start, cpu = time.perf_counter(), time.process_time()
    engine.reset(seed=False)
    current = -1
    for decision in range(HORIZON // INTERVAL):
        phase = phases[fixed_time_phase(decision, len(phases))]
        green = INTERVAL
        if phase != current and current >= 0:
            for inter in ids:
                engine.set_tl_phase(inter, YELLOW_PHASE)
            for _ in range(YELLOW):
                engine.next_step()
            green -= YELLOW
        for inter in ids:
            engine.set_tl_phase(inter, phase)
        current = phase
        for _ in range(green):
            engine.next_step()
        counts = engine.get_lane_vehicle_count()
        np.fromiter(map(counts.__getitem__, lanes), np.float32, len(lanes))
    return time.perf_counter() - start, time.process_time() - cpu


def raw_sumo(scenario: Scenario, lanes: list[str], phases: tuple[int, ...], cache: Path) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one raw libsumo episode with the FixedTime logic and per-lane vehicle-count reads."""
    from envs.traffic.sumo_backend import SumoEngine, _libsumo
    from envs.traffic.sumo_net import sumo_binary

    probe = SumoEngine(scenario, lanes, 0, cache)  # converts (cached) and gives the libsumo arguments
    arguments, sumo_lanes = probe._arguments(), probe._sumo_lanes
    states = {}
    for inter in scenario.intersections:
        program = probe.files.programs[inter.id]
        for p in phases:
            states[inter.id, p] = program.state(inter.phases[p])
            states[inter.id, p, "y"] = program.yellow_state(inter.phases[p], inter.phases[YELLOW_PHASE])
    probe.close()
    libsumo = _libsumo()
    libsumo.start([sumo_binary("sumo"), *arguments])
    tls, lane = libsumo.trafficlight, libsumo.lane
    start, cpu = time.perf_counter(), time.process_time()
    current = -1
    for decision in range(HORIZON // INTERVAL):
        phase = phases[fixed_time_phase(decision, len(phases))]
        green = INTERVAL
        if phase != current and current >= 0:
            for inter in scenario.intersections:
                tls.setRedYellowGreenState(inter.id, states[inter.id, current, "y"])
            for _ in range(YELLOW):
                libsumo.simulationStep()
            green -= YELLOW
        for inter in scenario.intersections:
            tls.setRedYellowGreenState(inter.id, states[inter.id, phase])
        current = phase
        for _ in range(green):
            libsumo.simulationStep()
        [lane.getLastStepVehicleNumber(name) for name in sumo_lanes]
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    libsumo.close()
    return elapsed


def env_episode(env: TrafficSignalEnv) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one FixedTime episode of ``env``."""
    cpu = time.process_time()
    wall = run_episode(env, FixedTimeController(env, GREEN), seed=0, learn=False)["wall_s"]
    return wall, time.process_time() - cpu


def bench_scenario(data_dir: str | None) -> Scenario:
    if data_dir is None and DATA_ENV_VAR not in os.environ and BESIDE_CHECKOUT.is_dir():
        data_dir = str(BESIDE_CHECKOUT)
    try:
        return load_scenario("jinan_3x4", data_dir)
    except DatasetMissingError:
        spec = GridSpec(cols=3, rows=4, horizon=HORIZON, road_length=400, demand_we=700, demand_ns=400)
        return grid_scenario(spec, "grid3x4 (Jinan data absent)")


def compare(backend: str, scenario: Scenario, repeats: int, cache: Path) -> dict[str, float]:
    """Fastest raw and env episode of ``repeats`` alternating pairs; steps/s and their ratio."""
    settings = TrafficEnvSettings(
        backend=backend, decision_interval=INTERVAL, yellow_time=YELLOW, horizon=HORIZON, cache_dir=str(cache)
    )
    env = TrafficSignalEnv(scenario, settings, indicators=False)
    lanes, phases = env.engine.lanes, env.green_phases
    raw_times, env_times = [], []
    try:
        for _ in range(repeats):
            if backend == "sumo":
                env.close()
                raw_times.append(raw_sumo(scenario, lanes, phases, cache))
            else:
                raw_times.append(raw_cityflow(scenario, lanes, phases))
            env_times.append(env_episode(env))
    finally:
        env.close()
    raw_rate = HORIZON / min(cpu for _, cpu in raw_times)
    env_rate = HORIZON / min(cpu for _, cpu in env_times)
    return {
        "raw_steps_per_cpu_s": raw_rate,
        "env_steps_per_cpu_s": env_rate,
        "ratio": env_rate / raw_rate,
        "env_wall_s_per_sim_hour": min(wall for wall, _ in env_times) * 3600.0 / HORIZON,
    }


def traffic_benchmark(quick: bool = False, data_dir: str | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Run the comparison on every available backend; print and return ``{backend: figures}``."""
    scenario = bench_scenario(data_dir)
    cache = cache or Path("~/.cache/spikerl/traffic/sumo").expanduser()
    repeats = 1 if quick else 3
    backends = ["cityflow", "sumo"] if cityflow_available() else ["sumo"]
    print(f"\ntraffic env vs raw simulator: {scenario.name}, {HORIZON} s, FixedTime {GREEN} s, one thread", flush=True)
    report = {}
    for backend in backends:
        figures = compare(backend, scenario, repeats, cache)
        report[backend] = figures
        print(
            f"  {backend:<9} raw {figures['raw_steps_per_cpu_s']:6.0f}, env {figures['env_steps_per_cpu_s']:6.0f} "
            f"steps per CPU s: {figures['ratio']:.2f}x; env {figures['env_wall_s_per_sim_hour']:.1f} s wall per "
            "simulated hour"
        )
    if "cityflow" not in report:
        print("  cityflow  not installed (make cityflow CITYFLOW_SRC=...): ratio not measured")
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m experiments.traffic_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one episode pair per backend instead of three")
    parser.add_argument("--data-dir", help="traffic data directory (default $SPIKERL_TRAFFIC_DATA)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    report = traffic_benchmark(args.quick, args.data_dir)
    if "cityflow" in report:
        ratio = report["cityflow"]["ratio"]
        verdict = "ok" if ratio >= TARGET else "MISSED"
        print(f"  target: CityFlow env / raw {ratio:.2f}x (target >= {TARGET}x) {verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
