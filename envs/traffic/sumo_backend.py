"""SUMO backend through libsumo (in-process; one simulation per process, so a new engine closes the previous one,
and stepping an engine that was closed that way is an error rather than a step of the other simulation).

The scenario is converted by :mod:`envs.traffic.sumo_net` (cached). Simulation options: 1 s steps, the given
seed, ``--time-to-teleport`` (default -1: no teleports, like CityFlow), warnings and step logs off. Errors raised by
SUMO while loading surface as :class:`SumoError` with SUMO's message.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from envs.traffic.engine import HALTING_SPEED, TrafficEngine
from envs.traffic.scenario import YELLOW_PHASE, Scenario
from envs.traffic.sumo_net import SumoError, build_sumo_scenario, sumo_binary, sumo_home

DEFAULT_CACHE = Path("~/.cache/spikerl/traffic/sumo")
_ACTIVE: list[SumoEngine] = []  # libsumo holds one simulation per process


def _libsumo():
    sumo_home()
    import libsumo

    return libsumo


class SumoEngine(TrafficEngine):
    """SUMO simulation of a CityFlow scenario (see :class:`TrafficEngine`)."""

    name = "sumo"

    def __init__(
        self,
        scenario: Scenario,
        lanes: list[str],
        seed: int = 0,
        cache_dir: str | Path | None = None,
        time_to_teleport: int = -1,
    ) -> None:
        super().__init__(scenario, lanes, seed)
        self.files = build_sumo_scenario(scenario, Path(cache_dir or DEFAULT_CACHE))
        self.time_to_teleport = time_to_teleport
        self._sumo_lanes = [self._to_sumo_lane(lane) for lane in self.lanes]
        self._phases = {inter.id: inter.phases for inter in scenario.intersections}
        self._current: dict[str, int] = {}
        self._last_green: dict[str, frozenset[int]] = {}
        self._started = False
        self._check_loads()
        self.reset(seed)

    def _check_loads(self) -> None:
        """Load the network once in a ``sumo`` subprocess: libsumo crashes the process on a bad input file, the
        subprocess reports SUMO's message instead."""
        command = [sumo_binary("sumo"), *self._arguments(), "--end", "0"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip()
            if result.returncode < 0:
                message = f"sumo crashed with signal {-result.returncode} while reading it (corrupt file?) {message}"
            raise SumoError(f"SUMO cannot load scenario {self.scenario.name} ({self.files.net}): {message}")

    def _to_sumo_lane(self, lane: str) -> str:
        road, index = lane.rsplit("_", 1)
        return f"{road}_{len(self.scenario.roads[road]['lanes']) - 1 - int(index)}"

    def _arguments(self) -> list[str]:
        return [
            "-n", str(self.files.net),
            "-r", str(self.files.routes),
            "--step-length", "1",
            "--begin", "0",
            "--seed", str(self.seed),
            "--time-to-teleport", str(self.time_to_teleport),
            "--no-step-log", "true",
            "--no-warnings", "true",
            "--duration-log.disable", "true",
        ]  # fmt: skip

    def reset(self, seed: int | None = None) -> None:
        libsumo = _libsumo()
        if seed is not None:
            self.seed = seed
        for other in _ACTIVE:
            if other is not self:
                other.close()
        try:
            if self._started and libsumo.isLoaded():
                libsumo.load(self._arguments())
            else:
                libsumo.start([sumo_binary("sumo"), *self._arguments()])
        except Exception as err:  # libsumo raises its own TraCIException / FatalTraCIError
            raise SumoError(f"SUMO failed to start scenario {self.scenario.name}: {err}") from err
        self._started = True
        _ACTIVE[:] = [self]
        self._check_links(libsumo)
        self.time = 0.0
        self.travel.reset()
        self._current = {}
        self._last_green = {}
        for inter in self.scenario.intersections:
            self.set_phase(inter.id, YELLOW_PHASE)

    def _check_links(self, libsumo) -> None:
        for tls, program in self.files.programs.items():
            count = len(libsumo.trafficlight.getControlledLinks(tls))
            if count != len(program.link_road_links):
                raise SumoError(
                    f"SUMO net of {self.scenario.name}: traffic light {tls} controls {count} links, the CityFlow "
                    f"intersection has {len(program.link_road_links)} lane links"
                )

    def _require_active(self) -> None:
        if self not in _ACTIVE:
            raise RuntimeError(
                f"the SUMO simulation of {self.scenario.name} was closed or replaced by another SUMO environment "
                "(libsumo runs one simulation per process): reset() this one, or run environments in separate "
                "processes"
            )

    def step(self, seconds: int = 1) -> None:
        self._require_active()
        libsumo = _libsumo()
        for _ in range(seconds):
            libsumo.simulationStep()
            self.time += 1.0
            self.travel.record_arrivals(libsumo.simulation.getArrivedIDList(), self.time)

    def set_phase(self, intersection: str, phase: int) -> None:
        if self._current.get(intersection) == phase:
            return
        program = self.files.programs[intersection]
        phases = self._phases[intersection]
        if phase == YELLOW_PHASE and intersection in self._last_green:
            state = program.yellow_state(self._last_green[intersection], phases[phase])
        else:
            state = program.state(phases[phase])
            if phase != YELLOW_PHASE:
                self._last_green[intersection] = phases[phase]
        _libsumo().trafficlight.setRedYellowGreenState(intersection, state)
        self._current[intersection] = phase

    def lane_stats(self) -> np.ndarray:
        self._require_active()
        lane = _libsumo().lane
        stats = np.empty((len(self.lanes), 4), dtype=np.float32)
        for row, sumo_lane in enumerate(self._sumo_lanes):
            count = lane.getLastStepVehicleNumber(sumo_lane)
            stats[row, 0] = count
            stats[row, 1] = lane.getLastStepHaltingNumber(sumo_lane)
            stats[row, 2] = lane.getWaitingTime(sumo_lane) / count if count else 0.0
            stats[row, 3] = lane.getLastStepMeanSpeed(sumo_lane) if count else self.max_speed[row]
        return stats

    def lane_vehicles(self) -> list[list[str]]:
        lane = _libsumo().lane
        return [list(lane.getLastStepVehicleIDs(sumo_lane)) for sumo_lane in self._sumo_lanes]

    def running_near_stop_line(self, reach: float) -> np.ndarray:
        libsumo = _libsumo()
        lane, vehicle = libsumo.lane, libsumo.vehicle
        counts = np.zeros(len(self.lanes), dtype=np.float32)
        for row, sumo_lane in enumerate(self._sumo_lanes):
            end = lane.getLength(sumo_lane) - reach
            counts[row] = sum(
                1
                for v in lane.getLastStepVehicleIDs(sumo_lane)
                if vehicle.getSpeed(v) >= HALTING_SPEED and vehicle.getLanePosition(v) >= end
            )
        return counts

    def vehicles_in_network(self) -> int:
        return int(_libsumo().vehicle.getIDCount())

    def close(self) -> None:
        if self._started:
            libsumo = _libsumo()
            if libsumo.isLoaded():
                libsumo.close()
            self._started = False
        if self in _ACTIVE:
            _ACTIVE.remove(self)
