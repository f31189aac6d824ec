"""PID altitude controller as deployed on the blimp (docs/blimp.md, Controllers), in code units at 10 Hz.

    I_k = clip(I_{k-1} + e_k T, ±integral_limit)
    D_k = (e_k - e_{k-1}) / T                       ("single"; "averaged": (e_k - e_{k-2}) / (2T))
    u_k = clip(Kp e_k + Ki I_k + Kd D_k, ±output_limit)

The derivative is 0 until enough past errors exist (no kick from an assumed zero error at start).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DERIVATIVE_MODES = ("single", "averaged")


@dataclass(frozen=True)
class PIDGains:
    """Gains in code units per metre (Kp), per metre·second (Ki) and per metre/second (Kd)."""

    kp: float = 9.0
    ki: float = 0.75
    kd: float = 14.0


DEPLOYED_GAINS = PIDGains()


class PID:
    """Discrete PID on the altitude error (m) returning the motor command (code units).

    Args:
        gains: :class:`PIDGains` (default: the deployed Kp 9, Ki 0.75, Kd 14).
        period: control period T, s.
        integral_limit: clamp of the integral state I (m·s).
        output_limit: clamp of the command.
        derivative: ``"single"`` or ``"averaged"`` difference.
    """

    def __init__(
        self,
        gains: PIDGains = DEPLOYED_GAINS,
        period: float = 0.1,
        integral_limit: float = 10.0,
        output_limit: float = 10.0,
        derivative: str = "single",
    ) -> None:
        if derivative not in DERIVATIVE_MODES:
            raise ValueError(f"unknown derivative mode {derivative!r}; valid: {', '.join(DERIVATIVE_MODES)}")
        if period <= 0:
            raise ValueError(f"PID period must be > 0, got {period}")
        self.gains = gains
        self.period = period
        self.integral_limit = integral_limit
        self.output_limit = output_limit
        self.derivative_mode = derivative
        self.reset()

    def reset(self) -> None:
        self.integral = 0.0
        self.history: list[float] = []  # the last two errors, newest last

    def derivative(self, error: float) -> float:
        """Difference quotient of ``error`` against the stored history (no state change)."""
        if self.derivative_mode == "averaged":
            return (error - self.history[0]) / (2 * self.period) if len(self.history) == 2 else 0.0
        return (error - self.history[-1]) / self.period if self.history else 0.0

    def __call__(self, error: float) -> float:
        g = self.gains
        self.integral = max(-self.integral_limit, min(self.integral_limit, self.integral + error * self.period))
        d = self.derivative(error)
        self.history = [*self.history[-1:], error]
        u = g.kp * error + g.ki * self.integral + g.kd * d
        return max(-self.output_limit, min(self.output_limit, u))


class PIDPopulation:
    """``P`` independent :class:`PID` controllers stepped together, with :class:`agents.blimp.snn.SNNPopulation`'s
    ``step`` interface (a fixed float partner in the closed-loop fitness, e.g. the PID's exact I term)."""

    def __init__(self, gains: PIDGains, population: int) -> None:
        self.controllers = [PID(gains) for _ in range(population)]

    def step(self, error: torch.Tensor) -> torch.Tensor:
        """Commands ``[P]`` (code units) for errors ``[P]`` (m)."""
        return torch.tensor([pid(e) for pid, e in zip(self.controllers, error.tolist())], dtype=error.dtype)
