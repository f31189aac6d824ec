"""Closed-loop tracking, actuation and neuromorphic-cost metrics of one blimp flight (docs/blimp.md, Metrics).

Step metrics use the profile's hold segments: every hold after the first whose set-point differs from the previous
one is a step (up or down); steady-state error and limit cycle use every hold but the first (start-up) one.
Tracking uses the true altitude ``z``; ``rmse_measured_cm`` uses the rangefinder.
"""

from __future__ import annotations

import numpy as np

from agents.blimp.controllers import Flight

SETTLING_BANDS_M = (0.05, 0.10)  # ±5 cm, or ±10 cm when the limit cycle exceeds ±5 cm
SSE_WINDOW_S = 10.0
FLOOR_CONTACT_M = 0.151  # the slide joint's lower limit is 0.15 m: the blimp has landed
LIMIT_CYCLE_WINDOW_S = 20.0

METRIC_NAMES = (
    "rmse_cm",
    "rmse_measured_cm",
    "overshoot_up_cm",
    "overshoot_down_cm",
    "rise_time_s",
    "settling_time_s",
    "settling_band_cm",
    "sse_cm",
    "sse_signed_cm",
    "limit_cycle_p2p_cm",
    "mean_abs_u",
    "total_variation_u",
    "dead_band_fraction",
    "flips",
    "floor_contact_fraction",
    "energy_proxy",
    "spikes_per_s_encoding",
    "spikes_per_s_hidden",
    "sops_per_s",
)


def _rise_time(z: np.ndarray, start: float, target: float, dt: float) -> float:
    """10 % -> 90 % rise time of ``z`` from ``start`` towards ``target`` (NaN if 90 % is never reached)."""
    progress = (z - start) / (target - start)
    low, high = np.flatnonzero(progress >= 0.1), np.flatnonzero(progress >= 0.9)
    if not len(low) or not len(high):
        return float("nan")
    return float((high[0] - low[0]) * dt)


def _settling_time(error: np.ndarray, band: float, dt: float) -> float:
    """Time until ``|error|`` enters ``band`` for good (NaN if it is outside at the end)."""
    outside = np.flatnonzero(np.abs(error) > band)
    if not len(outside):
        return 0.0
    if outside[-1] == len(error) - 1:
        return float("nan")
    return float((outside[-1] + 1) * dt)


def flight_metrics(flight: Flight) -> dict[str, float]:
    """All :data:`METRIC_NAMES` for one flight (NaN where a metric does not apply, e.g. no down steps)."""
    dt = flight.control_dt
    z, ref, u = flight["z"], flight["reference"], flight["u"]
    error = ref - z
    sse_ticks, cycle_ticks = round(SSE_WINDOW_S / dt), round(LIMIT_CYCLE_WINDOW_S / dt)
    up, down, rise, sse, sse_signed, cycles = [], [], [], [], [], []
    steps: list[tuple[int, int]] = []
    for index, (a, b) in enumerate(flight.holds):
        b = min(b, len(z))
        if b - a < 2:
            continue
        if index == 0 and len(flight.holds) > 1:
            continue  # the start-up hold is neither a step nor steady state
        tail = error[max(a, b - sse_ticks) : b]
        sse.append(np.abs(tail).mean())
        sse_signed.append(tail.mean())
        cycles.append(np.ptp(z[max(a, b - cycle_ticks) : b]))
        if index == 0:
            continue
        target, previous = ref[a], ref[flight.holds[index - 1][0]]
        delta = target - previous
        if abs(delta) < 1e-9:
            continue
        overshoot = max(0.0, float(np.max(np.sign(delta) * (z[a:b] - target))))
        (up if delta > 0 else down).append(overshoot)
        rise.append(_rise_time(z[a:b], previous, target, dt))
        steps.append((a, b))
    cycle = float(np.mean(cycles)) if cycles else float("nan")
    band = SETTLING_BANDS_M[0] if not cycle > 2 * SETTLING_BANDS_M[0] else SETTLING_BANDS_M[1]
    settle = [_settling_time(error[a:b], band, dt) for a, b in steps]
    duration = flight.duration

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    activity = flight.activity
    return {
        "rmse_cm": 100 * float(np.sqrt(np.mean(error**2))),
        "rmse_measured_cm": 100 * float(np.sqrt(np.mean((ref - flight["measured"]) ** 2))),
        "overshoot_up_cm": 100 * mean(up),
        "overshoot_down_cm": 100 * mean(down),
        "rise_time_s": mean(rise),
        "settling_time_s": mean(settle),
        "settling_band_cm": 100 * band,
        "sse_cm": 100 * mean(sse),
        "sse_signed_cm": 100 * mean(sse_signed),
        "limit_cycle_p2p_cm": 100 * cycle,
        "mean_abs_u": float(np.mean(np.abs(u))),
        "total_variation_u": float(np.sum(np.abs(np.diff(u)))),
        "dead_band_fraction": float(np.mean(flight["duty"] == 0.0)),
        "flips": float(flight.flips),
        "floor_contact_fraction": float(np.mean(z <= FLOOR_CONTACT_M)),
        "energy_proxy": float(np.sum(np.abs(flight["thrust"]) ** 1.5) * dt),
        "spikes_per_s_encoding": activity.get("spikes_encoding", 0.0) / duration,
        "spikes_per_s_hidden": activity.get("spikes_hidden", 0.0) / duration,
        "sops_per_s": activity.get("sops", 0.0) / duration,
    }
