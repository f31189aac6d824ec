"""Multi-agent traffic-signal environment with the PettingZoo Parallel API (one agent per signalised intersection).

Observation of agent ``i`` (float32, ``n_phases + 4 * max_lanes``): the one-hot current green phase, then per
incoming lane (order of :attr:`Intersection.incoming_lanes`, zero-padded to the largest intersection) the vehicle
count / 10, halting count / 10, mean waiting time / 60 s and mean speed / speed limit.

Action: index into the green-phase set (4-phase: WT-ET, NT-ST, WL-EL, NL-SL; 8-phase adds the four single
approaches). Every ``decision_interval`` seconds each agent picks a phase; when it differs from the current one,
``yellow_time`` seconds of the yellow phase run first. Reward: ``-queue`` (halting vehicles on the incoming lanes,
default) or ``-pressure`` (|incoming - outgoing| vehicles) at the end of the interval.

``infos[agent]`` carries ``queue`` (halting per incoming lane) and, with ``indicators=True``, the simulator
indicators MTLight learns from (targets for the *previous* observation): ``exit_flow`` (vehicles that crossed into
each exit road during the interval) and ``leaving_travel_time`` (mean seconds those vehicles spent on the
approach, measured at decision-step resolution; 0 if none). Tracking them reads every vehicle's road at every
decision step, so controllers that do not learn from them leave them off. :meth:`metrics` gives the episode
metrics: average travel time (CityFlow's definition, vehicles still in the network included), throughput and
mean queue per incoming lane.

A scenario whose flow schedules vehicles but in which none has entered the network one decision interval after
the first scheduled departure raises :class:`NoVehiclesError` instead of producing an empty-network "result".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.traffic.engine import TrafficEngine
from envs.traffic.scenario import YELLOW_PHASE, Scenario, ScenarioError

BACKENDS = ("sumo", "cityflow")
REWARDS = ("queue", "pressure")
OBS_SCALE = np.array([10.0, 10.0, 60.0, 1.0], dtype=np.float32)  # count, halting, waiting (s); speed uses the limit


@dataclass
class TrafficEnvSettings:
    """Simulation and control settings (all times in seconds)."""

    backend: str = "sumo"
    phases: int = 4
    decision_interval: int = 10
    yellow_time: int = 3
    horizon: int = 3600
    reward: str = "queue"
    time_to_teleport: int = -1  # SUMO only; -1 disables teleporting (CityFlow has none)
    cache_dir: str | None = None  # converted SUMO networks (default ~/.cache/spikerl/traffic/sumo)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; valid: {', '.join(REWARDS)}")
        if self.decision_interval < 1 or not 0 <= self.yellow_time < self.decision_interval:
            raise ValueError(
                f"need decision_interval >= 1 and 0 <= yellow_time < decision_interval, got "
                f"{self.decision_interval} and {self.yellow_time}"
            )
        if self.horizon < self.decision_interval:
            raise ValueError(f"horizon ({self.horizon}) must be >= decision_interval ({self.decision_interval})")


def make_engine(scenario: Scenario, lanes: list[str], settings: TrafficEnvSettings, seed: int) -> TrafficEngine:
    if settings.backend == "sumo":
        from envs.traffic.sumo_backend import DEFAULT_CACHE, SumoEngine

        return SumoEngine(scenario, lanes, seed, settings.cache_dir or DEFAULT_CACHE, settings.time_to_teleport)
    from envs.traffic.cityflow_backend import CityFlowEngine

    return CityFlowEngine(scenario, lanes, seed)


class NoVehiclesError(ScenarioError):
    """The flow schedules vehicles but the simulator put none into the network."""


class CrossingTracker:
    """Which vehicles crossed which intersection between two decision steps, and how long they were on the approach.

    A vehicle crosses intersection ``i`` when it was last seen on an incoming road of ``i`` and is now on an exit
    road of ``i``. Its approach time is the time between the first and the last decision step it was seen on the
    incoming road, plus one interval. Vehicles briefly invisible (inside a junction) keep their last road.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.incoming_of = {road: a for a, inter in enumerate(scenario.intersections) for road in inter.incoming_roads}
        self.exit_slot = {
            road: (a, k) for a, inter in enumerate(scenario.intersections) for k, road in enumerate(inter.exit_roads)
        }
        self.n_agents = len(scenario.intersections)
        self.n_exits = max(len(inter.exit_roads) for inter in scenario.intersections)
        self.reset()

    def reset(self) -> None:
        self.road: dict[str, str] = {}
        self.entered: dict[str, float] = {}
        self.seen: dict[str, float] = {}

    def update(self, vehicle_roads: dict[str, str], now: float, interval: float) -> tuple[np.ndarray, np.ndarray]:
        """Record positions at time ``now``; returns ``(exit_flow [A, E], leaving_travel_time [A])``."""
        flow = np.zeros((self.n_agents, self.n_exits), dtype=np.float32)
        travel = np.zeros(self.n_agents, dtype=np.float64)
        for vehicle, road in vehicle_roads.items():
            previous = self.road.get(vehicle)
            if previous == road:
                self.seen[vehicle] = now
                continue
            if previous is not None and previous in self.incoming_of and road in self.exit_slot:
                agent, slot = self.exit_slot[road]
                if agent == self.incoming_of[previous]:
                    flow[agent, slot] += 1
                    travel[agent] += self.seen[vehicle] - self.entered[vehicle] + interval
            self.road[vehicle], self.entered[vehicle], self.seen[vehicle] = road, now, now
        for vehicle in [v for v, t in self.seen.items() if now - t > 3 * interval]:
            del self.road[vehicle], self.entered[vehicle], self.seen[vehicle]
        counts = flow.sum(axis=1)
        return flow, (travel / np.maximum(counts, 1)).astype(np.float32)


class TrafficSignalEnv(ParallelEnv):
    """PettingZoo Parallel environment over a :class:`Scenario` (see module docstring)."""

    metadata = {"name": "spikerl_traffic_signals_v0", "render_modes": []}

    def __init__(
        self, scenario: Scenario, settings: TrafficEnvSettings | None = None, seed: int = 0, indicators: bool = True
    ) -> None:
        self.scenario = scenario
        self.indicators = indicators
        self.settings = settings or TrafficEnvSettings()
        self.green_phases = scenario.green_phases(self.settings.phases)
        if not scenario.intersections:
            raise ScenarioError(f"scenario {scenario.name} has no signalised intersection")
        self.possible_agents = [inter.id for inter in scenario.intersections]
        self.agents: list[str] = []
        lanes: list[str] = []
        for inter in scenario.intersections:
            lanes.extend(lane for lane in inter.incoming_lanes + inter.outgoing_lanes if lane not in lanes)
        position = {lane: k for k, lane in enumerate(lanes)}
        self.max_lanes = max(len(inter.incoming_lanes) for inter in scenario.intersections)
        # lane table index per (agent, incoming slot); padding points at an extra all-zero row
        self.incoming = np.full((len(self.possible_agents), self.max_lanes), len(lanes), dtype=np.int64)
        for a, inter in enumerate(scenario.intersections):
            self.incoming[a, : len(inter.incoming_lanes)] = [position[lane] for lane in inter.incoming_lanes]
        self.lane_roads = [lane.rsplit("_", 1)[0] for lane in lanes]
        self._build_movement_maps(position, len(lanes))
        self.engine = make_engine(scenario, lanes, self.settings, seed)
        self.crossings = CrossingTracker(scenario)
        self.n_phases = len(self.green_phases)
        self.obs_dim = self.n_phases + 4 * self.max_lanes
        self._speed_scale = np.concatenate([self.engine.max_speed, [1.0]]).astype(np.float32)
        self._seed = seed
        self._queue_sum = 0.0
        self._decisions = 0
        self._first_departure = scenario.vehicles[0].depart if scenario.vehicles else None
        self._vehicles_seen = False

    def _build_movement_maps(self, position: dict[str, int], n_lanes: int) -> None:
        """Cached matrices over the lane table (``L + 1`` rows, the last one padding) for the pressure baselines.

        ``movement_in`` / ``movement_out`` ``[M, L + 1]``: mean over a movement's incoming / outgoing lanes (every
        roadLink of every agent, ``M`` in all); ``movement_phase`` ``[A * n_phases, M]``: 1 where the movement is
        green in that agent's phase and not green in all of its action phases (always-green right turns add the
        same to every phase). ``movement_sum_in`` sums instead of averaging the incoming lanes.
        """
        agents = self.scenario.intersections
        rows = [(a, start, end) for a, inter in enumerate(agents) for *_, start, end in inter.links]
        self.movement_in = np.zeros((len(rows), n_lanes + 1), np.float32)
        self.movement_out = np.zeros_like(self.movement_in)
        self.movement_sum_in = np.zeros_like(self.movement_in)
        offset = {}
        for m, (a, start, end) in enumerate(rows):
            offset.setdefault(a, m)
            for lane in start:
                self.movement_in[m, position[lane]] += 1.0 / len(start)
                self.movement_sum_in[m, position[lane]] += 1.0
            for lane in end:
                self.movement_out[m, position[lane]] += 1.0 / len(end)
        self.movement_phase = np.zeros((len(self.possible_agents) * len(self.green_phases), len(rows)), np.float32)
        for a, inter in enumerate(self.scenario.intersections):
            common = frozenset.intersection(*(inter.phases[p] for p in self.green_phases))
            for j, p in enumerate(self.green_phases):
                for k in inter.phases[p] - common:
                    self.movement_phase[a * len(self.green_phases) + j, offset[a] + k] = 1.0

    @functools.cache  # noqa: B019 - one space per agent, as PettingZoo recommends
    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(0.0, np.inf, (self.obs_dim,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(self.n_phases)

    # ---- simulation ---------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._seed = seed
        self.engine.reset(self._seed)
        self.agents = list(self.possible_agents)
        self.current = np.full(len(self.agents), -1, dtype=np.int64)  # -1: yellow (start of episode)
        self.green_since = np.zeros(len(self.agents), dtype=np.float64)  # sim time the current green started
        self.crossings.reset()
        self._queue_sum, self._decisions = 0.0, 0
        self._vehicles_seen = False
        self.lane_table = np.zeros((len(self.lane_roads) + 1, 4), np.float32)  # [L + 1, 4], last row = padding
        self._read_state()
        obs = self._observations()
        return obs, {agent: {} for agent in self.agents}

    def _read_state(self) -> None:
        self.lane_table[:-1] = self.engine.lane_stats()
        if self.indicators:
            vehicles = self.engine.lane_vehicles()
            self.vehicle_roads = {v: self.lane_roads[k] for k, ids in enumerate(vehicles) for v in ids}

    def _check_vehicles(self) -> None:
        """Raise :class:`NoVehiclesError` when scheduled vehicles never entered (see the module docstring)."""
        if self._vehicles_seen or self._first_departure is None:
            return
        self._vehicles_seen = self.engine.vehicles_in_network() > 0 or self.engine.throughput > 0
        deadline = self._first_departure + self.settings.decision_interval
        if not self._vehicles_seen and self.engine.time > deadline:
            raise NoVehiclesError(
                f"scenario {self.scenario.name}: no vehicle entered the network by t={self.engine.time:.0f} s "
                f"although its flow schedules {len(self.scenario.vehicles)} vehicles from "
                f"t={self._first_departure:.0f} s; {self.engine.name} dropped them (check the flow's routes and "
                "vehicle fields)"
            )

    def step(self, actions: dict[str, int]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset()")
        chosen = np.empty(len(self.possible_agents), dtype=np.int64)
        for a, agent in enumerate(self.possible_agents):
            if agent not in actions:
                raise ValueError(f"missing action for agent {agent!r}")
            action = int(actions[agent])
            if not 0 <= action < self.n_phases:
                raise ValueError(f"action {action} of agent {agent!r} outside 0..{self.n_phases - 1}")
            chosen[a] = action
        settings = self.settings
        changing = (chosen != self.current) & (self.current >= 0)
        if settings.yellow_time and changing.any():
            for a in np.flatnonzero(changing):
                self.engine.set_phase(self.possible_agents[a], YELLOW_PHASE)
            self.engine.step(settings.yellow_time)
        for a, agent in enumerate(self.possible_agents):
            self.engine.set_phase(agent, self.green_phases[chosen[a]])
        switched = chosen != self.current
        self.green_since[switched] = self.engine.time
        self.engine.step(settings.decision_interval - (settings.yellow_time if changing.any() else 0))
        self.current = chosen
        self._read_state()
        self.engine.update_arrivals()
        self._check_vehicles()
        queues = self.lane_table[self.incoming, 1]  # [A, max_lanes]
        rewards = -self._pressure() if settings.reward == "pressure" else -queues.sum(axis=1)
        self._queue_sum += float(queues.sum() / max(1, np.count_nonzero(self.incoming < len(self.lane_roads))))
        self._decisions += 1
        done = self.engine.time >= settings.horizon
        obs = self._observations()
        infos = {agent: {"queue": queues[a]} for a, agent in enumerate(self.possible_agents)}
        if self.indicators:
            flow, travel = self.crossings.update(self.vehicle_roads, self.engine.time, settings.decision_interval)
            for a, agent in enumerate(self.possible_agents):
                infos[agent].update(exit_flow=flow[a], leaving_travel_time=float(travel[a]))
        result = (
            obs,
            {agent: float(rewards[a]) for a, agent in enumerate(self.possible_agents)},
            {agent: False for agent in self.possible_agents},
            {agent: done for agent in self.possible_agents},
            infos,
        )
        if done:
            self.agents = []
        return result

    def _pressure(self) -> np.ndarray:
        """``[A]`` intersection pressure: |sum over movements of (vehicles on the incoming lanes - mean vehicles on
        the outgoing lanes)|."""
        counts = self.lane_table[:, 0]
        movement = self.movement_sum_in @ counts - self.movement_out @ counts
        per_agent = np.add.reduceat(movement, self._agent_offsets)
        return np.abs(per_agent).astype(np.float32)

    @functools.cached_property
    def _agent_offsets(self) -> np.ndarray:
        return np.cumsum([0] + [len(inter.links) for inter in self.scenario.intersections[:-1]])

    def phase_pressures(self, feature: int = 0) -> np.ndarray:
        """``[A, n_phases]`` pressures: per green phase, the sum over its movements (those not green in every
        phase) of (mean ``feature`` on the movement's incoming lanes - mean on its outgoing lanes). ``feature`` 0:
        vehicles (MaxPressure), 1: halting vehicles (efficient pressure, Advanced-MP)."""
        values = self.lane_table[:, feature]
        movement = self.movement_in @ values - self.movement_out @ values
        return (self.movement_phase @ movement).reshape(len(self.possible_agents), self.n_phases)

    def phase_running_demand(self, reach: float) -> np.ndarray:
        """``[A, n_phases]``: per green phase, moving vehicles within ``reach`` metres of the stop line on the
        incoming lanes of its movements (Advanced-MP's effective running vehicles)."""
        running = np.append(self.engine.running_near_stop_line(reach), np.float32(0.0))
        movement = self.movement_sum_in @ running
        return (self.movement_phase @ movement).reshape(len(self.possible_agents), self.n_phases)

    def observation_matrix(self) -> np.ndarray:
        """All agents' observations, ``[A, obs_dim]``."""
        lanes = self.lane_table[self.incoming] / OBS_SCALE  # [A, max_lanes, 4]
        lanes[..., 3] = self.lane_table[self.incoming, 3] / self._speed_scale[self.incoming]
        phase = np.zeros((len(self.possible_agents), self.n_phases), dtype=np.float32)
        valid = self.current >= 0
        phase[np.flatnonzero(valid), self.current[valid]] = 1.0
        return np.concatenate([phase, lanes.reshape(len(phase), -1)], axis=1)

    def _observations(self) -> dict[str, np.ndarray]:
        matrix = self.observation_matrix()
        return {agent: matrix[a] for a, agent in enumerate(self.possible_agents)}

    def metrics(self) -> dict[str, float]:
        """Episode metrics so far: average travel time (s), throughput (vehicles), mean queue (vehicles per lane)."""
        return {
            "average_travel_time": self.engine.average_travel_time(),
            "throughput": float(self.engine.throughput),
            "mean_queue": self._queue_sum / max(1, self._decisions),
            "sim_time": self.engine.time,
        }

    def close(self) -> None:
        self.engine.close()
