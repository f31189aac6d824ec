"""CityFlow backend (optional: needs ``import cityflow``; install CityFlow from its upstream repository).

CityFlow's ``Engine`` destructor can deadlock when an engine is dropped soon after stepping (spec §2.6), so engines
are created once per process and scenario and reused with ``reset()``; they are never deleted.

Waiting time is tracked here per vehicle (consecutive seconds below 0.1 m/s, SUMO's definition) because CityFlow
does not report it; arrivals are vehicles that left ``get_vehicles(include_waiting=True)``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from envs.traffic.engine import HALTING_SPEED, TrafficEngine
from envs.traffic.scenario import YELLOW_PHASE, Scenario

_ENGINES: dict[tuple[str, int], object] = {}  # one CityFlow Engine per scenario and process, never deleted


class CityFlowUnavailableError(ImportError):
    """CityFlow is not importable."""


def cityflow_available() -> bool:
    try:
        import cityflow  # noqa: F401
    except ImportError:
        return False
    return True


class CityFlowEngine(TrafficEngine):
    """CityFlow simulation of a scenario (see :class:`TrafficEngine`); ``threads`` CityFlow worker threads."""

    name = "cityflow"

    def __init__(
        self, scenario: Scenario, lanes: list[str], seed: int = 0, work_dir: str | Path | None = None, threads: int = 1
    ) -> None:
        try:
            import cityflow
        except ImportError as err:
            raise CityFlowUnavailableError(
                "backend 'cityflow' needs the cityflow package (build it from https://github.com/cityflow-project/"
                "CityFlow); use backend 'sumo' instead"
            ) from err
        super().__init__(scenario, lanes, seed)
        key = (scenario.fingerprint(), threads)
        if key not in _ENGINES:
            directory = Path(work_dir or tempfile.mkdtemp(prefix="spikerl-cityflow-")) / scenario.fingerprint()
            roadnet, flow = scenario.write(directory)
            config = {
                "interval": 1.0,
                "seed": seed,
                "dir": str(directory) + "/",
                "roadnetFile": roadnet.name,
                "flowFile": flow.name,
                "rlTrafficLight": True,
                "laneChange": False,
                "saveReplay": False,
            }
            config_path = directory / "config.json"
            config_path.write_text(json.dumps(config))
            _ENGINES[key] = cityflow.Engine(str(config_path), thread_num=threads)
        self.engine = _ENGINES[key]
        self._waiting: dict[str, float] = {}
        self._present: set[str] = set()
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.engine.reset(seed=False)
        self.engine.set_random_seed(self.seed)
        self.time = 0.0
        self.travel.reset()
        self._waiting = {}
        self._present = set()
        for inter in self.scenario.intersections:
            self.set_phase(inter.id, YELLOW_PHASE)

    def step(self, seconds: int = 1) -> None:
        for _ in range(seconds):
            self.engine.next_step()
            self.time += 1.0
            speeds = self.engine.get_vehicle_speed()
            self._waiting = {
                v: (self._waiting.get(v, 0.0) + 1.0 if s < HALTING_SPEED else 0.0) for v, s in speeds.items()
            }
            present = set(self.engine.get_vehicles(include_waiting=True))
            self.travel.record_arrivals(tuple(self._present - present), self.time)
            self._present = present

    def set_phase(self, intersection: str, phase: int) -> None:
        self.engine.set_tl_phase(intersection, phase)

    def lane_stats(self) -> np.ndarray:
        counts = self.engine.get_lane_vehicle_count()
        halting = self.engine.get_lane_waiting_vehicle_count()
        vehicles = self.engine.get_lane_vehicles()
        speeds = self.engine.get_vehicle_speed()
        stats = np.empty((len(self.lanes), 4), dtype=np.float32)
        for row, lane in enumerate(self.lanes):
            ids = vehicles.get(lane, [])
            stats[row, 0] = counts.get(lane, 0)
            stats[row, 1] = halting.get(lane, 0)
            stats[row, 2] = np.mean([self._waiting.get(v, 0.0) for v in ids]) if ids else 0.0
            stats[row, 3] = np.mean([speeds.get(v, 0.0) for v in ids]) if ids else self.max_speed[row]
        return stats

    def lane_vehicles(self) -> list[list[str]]:
        vehicles = self.engine.get_lane_vehicles()
        return [list(vehicles.get(lane, [])) for lane in self.lanes]
