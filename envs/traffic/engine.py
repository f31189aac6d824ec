"""One engine interface over the traffic simulators (CityFlow, SUMO) and the shared travel-time bookkeeping.

All ids are CityFlow's: intersections, roads and lanes ``<road>_<k>`` with lane 0 the innermost lane; backends
translate. Time advances in 1 s simulation steps.

Average travel time (CityFlow's definition, docs/traffic.md): over every vehicle whose scheduled departure has
passed (including vehicles still queued for insertion or driving), the mean of ``arrival - depart`` for finished
vehicles and ``now - depart`` for the others. Both backends compute it here from the same departure schedule and
the arrivals they report each second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from envs.traffic.scenario import Scenario

HALTING_SPEED = 0.1  # m/s; a vehicle slower than this is halting (CityFlow's and SUMO's threshold)
LANE_FEATURES = ("vehicles", "halting", "mean_waiting_time", "mean_speed")


class TravelTimeTracker:
    """Average travel time and throughput from scheduled departures and reported arrivals (O(1) per query)."""

    def __init__(self, departures: dict[str, float]) -> None:
        self.departures = departures
        self._schedule = np.sort(np.fromiter(departures.values(), dtype=np.float64, count=len(departures)))
        self._prefix = np.concatenate([[0.0], np.cumsum(self._schedule)])
        self.reset()

    def reset(self) -> None:
        self.arrived = 0
        self._arrived_depart_sum = 0.0
        self._arrived_time_sum = 0.0

    def record_arrivals(self, vehicle_ids: list[str] | tuple[str, ...], now: float) -> None:
        for vid in vehicle_ids:
            self.arrived += 1
            self._arrived_depart_sum += self.departures[vid]
            self._arrived_time_sum += now

    def started(self, now: float) -> int:
        """Vehicles scheduled to depart at or before ``now``."""
        return int(np.searchsorted(self._schedule, now, side="right"))

    def average_travel_time(self, now: float) -> float:
        """Mean travel time (s) over vehicles scheduled to depart at or before ``now``; 0 if none."""
        started = self.started(now)
        if started == 0:
            return 0.0
        unfinished = (started - self.arrived) * now - (self._prefix[started] - self._arrived_depart_sum)
        return float((self._arrived_time_sum - self._arrived_depart_sum + unfinished) / started)


class TrafficEngine(ABC):
    """A running simulation of one scenario.

    Args:
        scenario: the scenario to simulate.
        lanes: the lane ids whose statistics :meth:`lane_stats` / :meth:`lane_vehicles` report, in this order.
        seed: simulator seed.
    """

    name = "engine"

    def __init__(self, scenario: Scenario, lanes: list[str], seed: int = 0) -> None:
        self.scenario = scenario
        self.lanes = list(lanes)
        self.seed = seed
        self.time = 0.0
        self.travel = TravelTimeTracker({v.id: v.depart for v in scenario.vehicles})
        self.max_speed = np.array([self._lane_max_speed(lane) for lane in self.lanes], dtype=np.float32)

    def _lane_max_speed(self, lane: str) -> float:
        road, index = lane.rsplit("_", 1)
        return float(self.scenario.roads[road]["lanes"][int(index)]["maxSpeed"])

    @abstractmethod
    def reset(self, seed: int | None = None) -> None:
        """Restart the scenario at time 0 (no vehicles); ``seed`` replaces the simulator seed if given."""

    @abstractmethod
    def step(self, seconds: int = 1) -> None:
        """Advance ``seconds`` 1-s simulation steps."""

    @abstractmethod
    def set_phase(self, intersection: str, phase: int) -> None:
        """Switch ``intersection`` to light phase ``phase`` (index into its CityFlow ``lightphases``)."""

    @abstractmethod
    def lane_stats(self) -> np.ndarray:
        """``[len(lanes), 4]`` float32: vehicles, halting vehicles, mean waiting time (s, consecutive seconds below
        0.1 m/s, 0 if empty) and mean speed (m/s; the lane speed limit if empty) per watched lane."""

    @abstractmethod
    def lane_vehicles(self) -> list[list[str]]:
        """Vehicle ids on each watched lane."""

    @abstractmethod
    def running_near_stop_line(self, reach: float) -> np.ndarray:
        """``[len(lanes)]`` float32: vehicles at >= 0.1 m/s within ``reach`` metres of each watched lane's end."""

    @abstractmethod
    def vehicles_in_network(self) -> int:
        """Vehicles currently driving in the network."""

    def average_travel_time(self) -> float:
        return self.travel.average_travel_time(self.time)

    @property
    def throughput(self) -> int:
        """Vehicles that have finished their route."""
        return self.travel.arrived

    def update_arrivals(self) -> None:  # noqa: B027 - optional hook
        """Register the vehicles that finished since the last call (backends that detect arrivals by polling;
        called at every decision step)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources."""
