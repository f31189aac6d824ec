"""Closed-loop controllers of the blimp (error in m -> command in code units) and a rollout that records a flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agents.blimp.snn import SNNArchitecture, SNNPopulation
from envs.blimp.env import BlimpAltitudeEnv


class Controller(Protocol):
    """Anything that maps the altitude error to a motor command once per control tick."""

    def reset(self) -> None: ...

    def __call__(self, error: float) -> float: ...


class SNNController:
    """One evolved network (a population of size 1) as a closed-loop controller."""

    def __init__(self, architecture: SNNArchitecture, genome: np.ndarray) -> None:
        self.network = SNNPopulation(architecture, np.asarray(genome).reshape(1, -1))

    def reset(self) -> None:
        self.network.reset()

    def __call__(self, error: float) -> float:
        return float(self.network.step(error)[0])

    def activity(self) -> dict[str, float]:
        """Spike and synaptic-operation totals since :meth:`reset`."""
        counts = self.network.spike_counts
        return {
            "spikes_encoding": float(counts["encoding"][0]),
            "spikes_hidden": float(counts["hidden"][0]),
            "sops": float(self.network.synaptic_operations()[0]),
        }


class SummedController:
    """Sum of several controllers' commands (the paper's SNN-PD + SNN-I combination)."""

    def __init__(self, *parts: Controller) -> None:
        if not parts:
            raise ValueError("SummedController needs at least one controller")
        self.parts = parts

    def reset(self) -> None:
        for part in self.parts:
            part.reset()

    def __call__(self, error: float) -> float:
        return sum(part(error) for part in self.parts)

    def activity(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for part in self.parts:
            for key, value in getattr(part, "activity", dict)().items():
                total[key] = total.get(key, 0.0) + value
        return total


@dataclass
class Flight:
    """One closed-loop episode, indexed by control tick (``T`` ticks after the initial observation).

    Arrays (``[T]``): ``time`` (s), ``error`` (observed, m), ``command`` (controller output, code units), and the
    env ``info`` fields ``z``, ``vz``, ``reference``, ``measured``, ``thrust``, ``servo_angle``, ``duty``, ``u``,
    ``net_weight``; ``flips`` and ``activity`` are episode totals.
    """

    signals: dict[str, np.ndarray]
    holds: list[tuple[int, int]]
    control_dt: float
    flips: int
    terminated: bool
    activity: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.signals[name]

    @property
    def duration(self) -> float:
        return len(self.signals["time"]) * self.control_dt


INFO_FIELDS = ("z", "vz", "reference", "measured", "thrust", "servo_angle", "duty", "u", "net_weight")


def fly(
    env: BlimpAltitudeEnv, controller: Controller, seed: int | None = None, options: dict[str, Any] | None = None
) -> Flight:
    """Run ``controller`` on ``env`` for one episode; the controller is reset first."""
    observation, info = env.reset(seed=seed, options=options)
    controller.reset()
    max_command = env.params.max_command
    rows: dict[str, list[float]] = {name: [] for name in ("error", "command", *INFO_FIELDS)}
    terminated = truncated = False
    while not (terminated or truncated):
        error = float(observation[0])
        command = float(controller(error))
        rows["error"].append(error)
        rows["command"].append(command)
        observation, _, terminated, truncated, info = env.step([command / max_command])
        for name in INFO_FIELDS:
            rows[name].append(info[name])
    signals = {name: np.asarray(values) for name, values in rows.items()}
    signals["time"] = env.params.control_dt * np.arange(1, len(signals["z"]) + 1)
    activity = controller.activity() if hasattr(controller, "activity") else {}
    assert env.plan is not None
    return Flight(signals, list(env.plan.holds), env.params.control_dt, int(info["flips"]), terminated, activity)
