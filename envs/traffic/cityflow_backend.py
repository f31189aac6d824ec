"""CityFlow backend (optional: needs ``import cityflow``; see the install notes in the traffic docs).

Engines. CityFlow's ``Engine`` destructor can deadlock (its worker threads may miss the shutdown barrier), which
also hangs the interpreter at exit, so an engine is never destroyed: every engine created is kept alive for the
life of the process and pooled per scenario. An environment takes an idle engine of its scenario (or creates one)
and gives it back in :meth:`CityFlowEngine.close`, so two live environments never share an engine. CityFlow
reads its config, roadnet and flow files only while it is built; they are written to a temporary directory that
is removed right after. CityFlow reports load failures only on stderr (and then returns an engine that crashes
when used), so construction captures stderr and turns such a message into :class:`ScenarioError`.

Queries. Simulation steps call ``next_step`` only. The observation is read at decision steps with two batched
queries (vehicles per lane, speed per vehicle) mapped onto the watched lanes with array operations; lane counts
and halting counts follow from them. Waiting time is counted at that resolution: a vehicle halting (< 0.1 m/s)
at a read has waited ``its previous waiting + seconds since the previous read``, a moving vehicle 0 (SUMO's
definition with the read interval as its step). Average travel time is CityFlow's own
``get_average_travel_time()`` (the definition of :mod:`envs.traffic.engine`). Throughput counts vehicles that were
in the simulation at one decision-step read and are gone at a later one (CityFlow does not report arrivals; a
vehicle whose whole trip is shorter than one decision interval is missed, and one CityFlow drops, e.g. for an
unroutable route, is never counted).
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from envs.traffic.engine import HALTING_SPEED, TrafficEngine
from envs.traffic.scenario import YELLOW_PHASE, Scenario, ScenarioError

_IDLE: dict[tuple[str, int], list[Any]] = {}  # engines not in use, per (scenario fingerprint, threads)


class CityFlowUnavailableError(ImportError):
    """CityFlow is not importable."""


def cityflow_available() -> bool:
    try:
        import cityflow  # noqa: F401
    except ImportError:
        return False
    return True


def _import_cityflow():
    try:
        import cityflow
    except ImportError as err:
        raise CityFlowUnavailableError(
            "backend 'cityflow' needs the cityflow package, which is not on PyPI: build it from a CityFlow clone "
            "with `make cityflow CITYFLOW_SRC=path/to/CityFlow` (see the traffic docs), or use backend 'sumo'"
        ) from err
    return cityflow


def _build_engine(scenario: Scenario, seed: int, threads: int) -> Any:
    """A new CityFlow engine for ``scenario`` (kept alive forever, see the module docstring)."""
    cityflow = _import_cityflow()
    with tempfile.TemporaryDirectory(prefix="spikerl-cityflow-") as directory:
        roadnet, flow = scenario.write(Path(directory))
        config = {
            "interval": 1.0,
            "seed": seed,
            "dir": directory + "/",
            "roadnetFile": roadnet.name,
            "flowFile": flow.name,
            "rlTrafficLight": True,
            "laneChange": False,
            "saveReplay": False,
        }
        config_path = Path(directory) / "config.json"
        config_path.write_text(json.dumps(config))
        with tempfile.TemporaryFile() as captured:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(captured.fileno(), 2)
            try:
                engine = cityflow.Engine(str(config_path), thread_num=threads)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            captured.seek(0)
            message = " ".join(captured.read().decode(errors="replace").split())
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))  # never destroyed: its destructor can deadlock
    if message:
        raise ScenarioError(f"CityFlow cannot load scenario {scenario.name}: {message}")
    return engine


class CityFlowEngine(TrafficEngine):
    """CityFlow simulation of a scenario (see :class:`TrafficEngine`); ``threads`` CityFlow worker threads."""

    name = "cityflow"

    def __init__(self, scenario: Scenario, lanes: list[str], seed: int = 0, threads: int = 1) -> None:
        super().__init__(scenario, lanes, seed)
        self._key = (scenario.fingerprint(), threads)
        self.engine: Any = None
        self._lane_length = np.array([self._length(lane) for lane in self.lanes], dtype=np.float64)
        self._waiting: dict[str, float] = {}
        self._read_time = 0.0
        self._present: set[str] = set()
        self._arrived = 0
        self._arrivals_time = 0.0
        self.reset(seed)

    def _length(self, lane: str) -> float:
        """CityFlow's lane length: the road polyline shortened by the width of each signalised end node."""
        road = self.scenario.roads[lane.rsplit("_", 1)[0]]
        widths = sum(self.scenario.node_width(road[key]) for key in ("startIntersection", "endIntersection"))
        return self.scenario.road_length(road["id"]) - widths

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        if self.engine is None:  # first reset, or reset after close(): take an idle engine or build one
            idle = _IDLE.setdefault(self._key, [])
            self.engine = idle.pop() if idle else _build_engine(self.scenario, self.seed, self._key[1])
        self.engine.reset(seed=False)
        self.engine.set_random_seed(self.seed)
        self.time = 0.0
        self._waiting = {}
        self._read_time = 0.0
        self._present, self._arrived, self._arrivals_time = set(), 0, 0.0
        for inter in self.scenario.intersections:
            self.set_phase(inter.id, YELLOW_PHASE)

    def step(self, seconds: int = 1) -> None:
        next_step = self.engine.next_step
        for _ in range(seconds):
            next_step()
        self.time += seconds

    def set_phase(self, intersection: str, phase: int) -> None:
        self.engine.set_tl_phase(intersection, phase)

    def _lane_vehicle_speeds(self) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
        """Vehicle ids per watched lane, and the flat ``[V]`` speeds and lane rows of those vehicles."""
        by_lane = self.engine.get_lane_vehicles()
        ids = [by_lane[lane] for lane in self.lanes]
        flat = list(itertools.chain.from_iterable(ids))
        speeds = self.engine.get_vehicle_speed()
        speed = np.fromiter(map(speeds.__getitem__, flat), dtype=np.float64, count=len(flat))
        rows = np.repeat(np.arange(len(ids)), np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        return ids, speed, rows

    def lane_stats(self) -> np.ndarray:
        # two queries (lane vehicles, speeds): counts and halting counts follow from them exactly as CityFlow's
        # get_lane_vehicle_count / get_lane_waiting_vehicle_count compute them (speed < 0.1 m/s)
        n = len(self.lanes)
        ids, speed, rows = self._lane_vehicle_speeds()
        flat = list(itertools.chain.from_iterable(ids))
        halting = speed < HALTING_SPEED
        previous = np.fromiter(map(self._waiting.get, flat, itertools.repeat(0.0)), np.float64, len(flat))
        waiting = np.where(halting, previous + (self.time - self._read_time), 0.0)
        self._waiting = dict(zip(flat, waiting.tolist()))
        self._read_time = self.time
        stats = np.empty((n, 4), dtype=np.float32)
        present = np.bincount(rows, minlength=n)
        divisor = np.maximum(present, 1)
        stats[:, 0] = present
        stats[:, 1] = np.bincount(rows, weights=halting, minlength=n)
        stats[:, 2] = np.bincount(rows, weights=waiting, minlength=n) / divisor
        stats[:, 3] = np.where(present > 0, np.bincount(rows, weights=speed, minlength=n) / divisor, self.max_speed)
        return stats

    def lane_vehicles(self) -> list[list[str]]:
        by_lane = self.engine.get_lane_vehicles()
        return [by_lane[lane] for lane in self.lanes]

    def running_near_stop_line(self, reach: float) -> np.ndarray:
        ids, speed, rows = self._lane_vehicle_speeds()
        distances = self.engine.get_vehicle_distance()
        flat = itertools.chain.from_iterable(ids)
        travelled = np.fromiter(map(distances.__getitem__, flat), np.float64, len(speed))
        near = (speed >= HALTING_SPEED) & (self._lane_length[rows] - travelled <= reach)
        return np.bincount(rows[near], minlength=len(self.lanes)).astype(np.float32)

    def vehicles_in_network(self) -> int:
        return int(self.engine.get_vehicle_count())

    def average_travel_time(self) -> float:
        return float(self.engine.get_average_travel_time())

    def update_arrivals(self) -> None:
        if self._arrivals_time != self.time:
            present = set(self.engine.get_vehicles(include_waiting=True))
            self._arrived += len(self._present - present)
            self._present, self._arrivals_time = present, self.time

    @property
    def throughput(self) -> int:
        self.update_arrivals()
        return self._arrived

    def close(self) -> None:
        if self.engine is not None:
            _IDLE[self._key].append(self.engine)
            self.engine = None
