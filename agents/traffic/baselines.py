"""Classic signal-control baselines: FixedTime (cyclic plan) and MaxPressure (Varaiya 2013).

Both act on a :class:`~envs.traffic.env.TrafficSignalEnv` and return one action (green-phase index) per agent,
``[A]`` int64, at every decision step.
"""

from __future__ import annotations

import numpy as np

from envs.traffic.env import TrafficSignalEnv


class FixedTimeController:
    """Cycle through the green phases, ``green_time`` seconds each (rounded to whole decision intervals; the yellow
    inserted on every change is part of the next green's first interval)."""

    def __init__(self, env: TrafficSignalEnv, green_time: int = 30) -> None:
        interval = env.settings.decision_interval
        if green_time < interval:
            raise ValueError(f"green_time ({green_time} s) must be >= decision_interval ({interval} s)")
        self.intervals_per_phase = max(1, round(green_time / interval))
        self.n_agents, self.n_phases = len(env.possible_agents), env.n_phases
        self.reset()

    def reset(self) -> None:
        self.decisions = 0

    def act(self, env: TrafficSignalEnv) -> np.ndarray:
        phase = (self.decisions // self.intervals_per_phase) % self.n_phases
        self.decisions += 1
        return np.full(self.n_agents, phase, dtype=np.int64)


class MaxPressureController:
    """Every decision step pick the green phase with the largest pressure (sum over its movements of mean vehicles
    on the incoming lanes minus mean vehicles on the outgoing lanes); ties go to the current phase."""

    def __init__(self, env: TrafficSignalEnv) -> None:
        self.reset()

    def reset(self) -> None:
        pass

    def act(self, env: TrafficSignalEnv) -> np.ndarray:
        pressures = env.phase_pressures()
        best = pressures.argmax(axis=1)
        keep = (env.current >= 0) & (pressures[np.arange(len(best)), np.maximum(env.current, 0)] >= pressures.max(1))
        return np.where(keep, env.current, best).astype(np.int64)
