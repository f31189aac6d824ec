"""Classic signal-control baselines: FixedTime, MaxPressure (Varaiya 2013) and Advanced-MP (Zhang et al. 2022).

All act on a :class:`~envs.traffic.env.TrafficSignalEnv` and return one action (green-phase index) per agent,
``[A]`` int64, at every decision step (every ``env.decision_interval`` seconds, the action interval).

* FixedTime cycles through the green phases.
* MaxPressure picks the phase with the largest pressure (sum over its movements of mean vehicles on the incoming
  lanes minus mean vehicles on the outgoing lanes). A phase stays green for at least ``min_green`` seconds;
  ties go to the current phase.
* Advanced-MP ("Expression might be enough", ICML 2022) uses the *efficient pressure*: the same sum with halting
  (queued) vehicles instead of all vehicles. It keeps the current phase while the current phase's *effective
  running vehicles* (moving vehicles close enough to the stop line to cross within one action interval, i.e.
  within ``max speed x interval`` metres) weighted by ``weight`` are at least the largest efficient pressure;
  otherwise it switches to the phase with the largest efficient pressure.
"""

from __future__ import annotations

import numpy as np

from agents.traffic.config import TrafficAgentError
from envs.traffic.env import TrafficSignalEnv

HALTING = 1  # lane-table column of the halting vehicles


class FixedTimeController:
    """Cycle through the green phases, ``green_time`` seconds each (rounded to whole decision intervals; the yellow
    inserted on every change is part of the next green's first interval)."""

    def __init__(self, env: TrafficSignalEnv, green_time: int = 30) -> None:
        interval = env.settings.decision_interval
        if green_time < interval:
            raise TrafficAgentError(
                f"agent.green_time ({green_time} s) must be >= env.decision_interval ({interval} s)"
            )
        self.intervals_per_phase = max(1, round(green_time / interval))
        self.n_agents, self.n_phases = len(env.possible_agents), env.n_phases
        self.reset()

    def reset(self) -> None:
        self.decisions = 0

    def act(self, env: TrafficSignalEnv) -> np.ndarray:
        phase = (self.decisions // self.intervals_per_phase) % self.n_phases
        self.decisions += 1
        return np.full(self.n_agents, phase, dtype=np.int64)


def _hold(env: TrafficSignalEnv, min_green: float) -> np.ndarray:
    """``[A]`` bool: agents whose current green has run for less than ``min_green`` seconds."""
    return (env.current >= 0) & (env.engine.time - env.green_since < min_green)


def _current_or(env: TrafficSignalEnv, keep: np.ndarray, other: np.ndarray) -> np.ndarray:
    return np.where(keep & (env.current >= 0), env.current, other).astype(np.int64)


class MaxPressureController:
    """Largest-pressure phase at every decision step after ``min_green`` seconds of green (see module docstring)."""

    def __init__(self, env: TrafficSignalEnv, min_green: int = 0) -> None:
        self.min_green = min_green
        self.reset()

    def reset(self) -> None:
        pass

    def act(self, env: TrafficSignalEnv) -> np.ndarray:
        pressures = env.phase_pressures()
        current = pressures[np.arange(len(pressures)), np.maximum(env.current, 0)]
        keep = _hold(env, self.min_green) | (current >= pressures.max(axis=1))
        return _current_or(env, keep, pressures.argmax(axis=1))


class AdvancedMaxPressureController:
    """Advanced-MP: efficient pressure plus the running-vehicle rule (see module docstring)."""

    def __init__(self, env: TrafficSignalEnv, min_green: int = 0, weight: float = 1.0) -> None:
        self.min_green = min_green
        self.weight = weight
        speeds = [road["lanes"][0]["maxSpeed"] for road in env.scenario.roads.values()]
        self.reach = max(speeds) * env.settings.decision_interval  # metres a vehicle covers in one interval
        self.reset()

    def reset(self) -> None:
        pass

    def act(self, env: TrafficSignalEnv) -> np.ndarray:
        pressures = env.phase_pressures(HALTING)
        demand = env.phase_running_demand(self.reach)
        current = demand[np.arange(len(demand)), np.maximum(env.current, 0)]
        keep = _hold(env, self.min_green) | (current * self.weight >= pressures.max(axis=1))
        return _current_or(env, keep, pressures.argmax(axis=1))
