"""Reference altitude profiles (docs/blimp.md, Environment), selectable by name.

A profile is sampled per episode into a :class:`ReferencePlan`: the altitude reference and an additive
net-weight disturbance per control tick, the hold segments that the step metrics are computed over, and the
buoyancy mode the profile is meant for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PAPER_PD_STEPS = (1.0, 0.5, 0.0, -0.5, -1.0)  # Δh of the paper's PD protocol, m
PAPER_FULL_LEVELS = (0.5, 1.0, 1.5, 1.0, 0.5)  # set-points of the paper's I / full-controller protocol, m
I_TRAINING_NET_WEIGHT = 0.07  # N, default half-range of the I-training ΔW (the paper: b ~ U(-4, 4) u ≈ ±0.08 N)


@dataclass
class ReferencePlan:
    """One episode's schedule, indexed by control tick.

    Attributes:
        reference: altitude set-point, m, shape ``[T]``.
        net_weight_offset: added to the buoyancy mode's net weight ΔW, N, shape ``[T]`` (positive sinks).
        holds: ``(start, end)`` tick ranges over which the reference is constant (end exclusive).
        buoyancy: the buoyancy mode the profile is designed for (used when the caller gives none).
    """

    reference: np.ndarray
    net_weight_offset: np.ndarray
    holds: list[tuple[int, int]] = field(default_factory=list)
    buoyancy: str = "neutral"

    def __post_init__(self) -> None:
        if self.reference.shape != self.net_weight_offset.shape or self.reference.ndim != 1:
            raise ValueError("reference and net_weight_offset must be 1-D arrays of the same length")


def _holds_of(reference: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of a constant reference, at least 2 ticks long."""
    change = np.flatnonzero(np.diff(reference) != 0) + 1
    edges = [0, *change.tolist(), len(reference)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b - a >= 2 and reference[a] == reference[b - 1]]


def _levels_plan(levels: list[float], dwell_ticks: list[int], buoyancy: str) -> ReferencePlan:
    reference = np.concatenate([np.full(n, level) for level, n in zip(levels, dwell_ticks)])
    holds, start = [], 0
    for n in dwell_ticks:
        holds.append((start, start + n))
        start += n
    return ReferencePlan(reference, np.zeros_like(reference), holds, buoyancy)


def _grid_level(rng: np.random.Generator) -> float:
    return float(np.round(rng.uniform(0.4, 1.8), 1))


def _next_level(rng: np.random.Generator, previous: float) -> float:
    """A grid level in [0.4, 1.8] m whose distance to ``previous`` is in [0.3, 1.0] m."""
    while True:
        candidate = _grid_level(rng)
        if 0.3 - 1e-9 <= abs(candidate - previous) <= 1.0 + 1e-9:
            return candidate


def paper_pd(rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None):
    """Start at 1.5 m, hold 20 s, then step by Δh ∈ {+1, +0.5, 0, -0.5, -1} m (random unless ``step``), hold 50 s."""
    delta = float(rng.choice(PAPER_PD_STEPS)) if step is None else float(step)
    return _levels_plan([1.5, 1.5 + delta], [round(20 / dt), round(50 / dt)], "neutral")


def paper_full(rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None):
    """Set-points 0.5 → 1.0 → 1.5 → 1.0 → 0.5 m, 70 s each, negatively buoyant."""
    return _levels_plan(list(PAPER_FULL_LEVELS), [round(70 / dt)] * len(PAPER_FULL_LEVELS), "negative")


def random_steps(
    rng: np.random.Generator,
    dt: float,
    duration_s: float | None = None,
    step: float | None = None,
    first_dwell_s: float | None = None,
) -> ReferencePlan:
    """The authors' random generator: levels in [0.4, 1.8] m on a 0.1 m grid, |Δ| in [0.3, 1.0] m, dwell
    U[20, 35] s (the first dwell ``first_dwell_s`` if given), for ``duration_s`` (default 60 s)."""
    total = round((duration_s or 60.0) / dt)
    levels = [_grid_level(rng)]
    ticks = [round((first_dwell_s if first_dwell_s is not None else rng.uniform(20, 35)) / dt)]
    while sum(ticks) < total:
        levels.append(_next_level(rng, levels[-1]))
        ticks.append(round(rng.uniform(20, 35) / dt))
    ticks[-1] -= sum(ticks) - total
    if ticks[-1] <= 0:
        levels, ticks = levels[:-1], ticks[:-1]
    return _levels_plan(levels, ticks, "neutral")


def ramp(rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None):
    """Trapezoid 0.5 → 2.0 → 0.5 m at U[0.02, 0.1] m/s with 15 s holds; ``duration_s`` is implied."""
    rate = rng.uniform(0.02, 0.1)
    hold = np.full(round(15 / dt), 0.5)
    up = 0.5 + rate * dt * np.arange(1, round(1.5 / rate / dt) + 1)
    top = np.full(round(15 / dt), 2.0)
    reference = np.concatenate([hold, np.minimum(up, 2.0), top, np.maximum(2.5 - up, 0.5), hold])
    return ReferencePlan(reference, np.zeros_like(reference), _holds_of(reference), "neutral")


def sine(rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None):
    """1.25 m + 0.5 m · sin(2π t / P), P ~ U[30, 120] s, for ``duration_s`` (default 120 s)."""
    period = rng.uniform(30, 120)
    t = dt * np.arange(round((duration_s or 120.0) / dt))
    reference = 1.25 + 0.5 * np.sin(2 * np.pi * t / period)
    return ReferencePlan(reference, np.zeros_like(reference), [], "neutral")


def disturb(rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None):
    """Hold 1.0 m for 120 s, negatively buoyant; ΔW steps by ±0.03 N at 40 s and a ±0.05 N gust lasts 2 s at 80 s."""
    n = round(120 / dt)
    reference = np.full(n, 1.0)
    offset = np.zeros(n)
    offset[round(40 / dt) :] += rng.choice([-0.03, 0.03])
    offset[round(80 / dt) : round(82 / dt)] += rng.choice([-0.05, 0.05])
    return ReferencePlan(reference, offset, [(0, round(40 / dt)), (round(40 / dt), n)], "negative")


def i_training(
    rng: np.random.Generator,
    dt: float,
    duration_s: float | None = None,
    step: float | None = None,
    net_weight: float = I_TRAINING_NET_WEIGHT,
):
    """I-controller data: set-points of 50 s (|Δ| in [0.3, 1] m) for ``duration_s`` (default 250 s: 5 steps), with
    the net weight ΔW ~ U(-net_weight, net_weight) N redrawn at every step."""
    steps = max(1, round((duration_s or 250.0) / 50.0))
    ticks = round(50 / dt)
    levels = [_grid_level(rng)]
    for _ in range(steps - 1):
        levels.append(_next_level(rng, levels[-1]))
    result = _levels_plan(levels, [ticks] * steps, "neutral")
    result.net_weight_offset = np.repeat(rng.uniform(-net_weight, net_weight, steps), ticks)
    return result


def pair_training(
    rng: np.random.Generator,
    dt: float,
    duration_s: float | None = None,
    step: float | None = None,
    net_weight: float = I_TRAINING_NET_WEIGHT,
):
    """PD + I pair data: the set-points of :func:`i_training` (50 s each, |Δ| in [0.3, 1] m) on the negatively
    buoyant blimp of paper-full, its net weight offset by one ΔW ~ U(-net_weight, net_weight) N for the whole
    flight: the integral settles once, and each step's overshoot is the controller's, not a new weight's."""
    result = i_training(rng, dt, duration_s, step, net_weight)
    result.net_weight_offset = np.full_like(result.reference, rng.uniform(-net_weight, net_weight))
    result.buoyancy = "negative"
    return result


ProfileFn = Callable[..., ReferencePlan]
PROFILES: dict[str, ProfileFn] = {
    "paper-pd": paper_pd,
    "paper-full": paper_full,
    "random-steps": random_steps,
    "ramp": ramp,
    "sine": sine,
    "disturb": disturb,
    "i-training": i_training,
    "pair-training": pair_training,
}


def make_plan(
    name: str, rng: np.random.Generator, dt: float, duration_s: float | None = None, step: float | None = None
) -> ReferencePlan:
    """Sample profile ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown reference profile {name!r}; valid: {', '.join(PROFILES)}")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"profile duration must be > 0 s, got {duration_s}")
    return PROFILES[name](rng, dt, duration_s, step)
