"""Imitation datasets for the evolved SNN, flown in the MuJoCo blimp environment (docs/blimp.md, Evolution).

* ``pd``: the neutrally buoyant blimp flown by PD controllers with random gains (Kp ~ U(5, 12), Kd ~ U(5, 18)) over
  random steps (first change 3 s into each window); target = PD(Kp, Kd) of the recorded error with the authors'
  two-sample averaged derivative, derivative kicks above 10 divided by 10, output clipped to ±10.
* ``i``: the I-training protocol: 5 set-points of 50 s with the net weight ΔW ~ U(-r, r) N (r = ``net_weight``,
  default 0.07) redrawn at each step (a random bias in the actuator's units), flown by the deployed PID;
  target = Ki · clip(Σ T e, ±10).

Windows are equal-length, so a dataset is ``[W, T]`` error and target arrays plus one longer test sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.blimp.controllers import fly
from agents.blimp.pid import PID, PIDGains
from envs.blimp.env import BlimpAltitudeEnv
from envs.blimp.profiles import I_TRAINING_NET_WEIGHT, i_training, random_steps

TARGETS = ("pd", "i")
KICK_LIMIT = 10.0


@dataclass
class ImitationData:
    """Training windows ``[W, T]`` and a test sequence ``[T_test]`` of errors (m) and target commands (code units)."""

    train_errors: np.ndarray
    train_targets: np.ndarray
    test_errors: np.ndarray
    test_targets: np.ndarray

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, **vars(self))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ImitationData:
        try:
            with np.load(path) as data:
                return cls(
                    **{name: data[name] for name in ("train_errors", "train_targets", "test_errors", "test_targets")}
                )
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"dataset file {path} is missing or corrupt: {err}") from err


def pd_target(errors: np.ndarray, kp: float, kd: float, period: float = 0.1) -> np.ndarray:
    """PD command for an error sequence ``[T]``: two-sample averaged derivative (0 for the first two ticks),
    derivative terms beyond ±10 divided by 10, output clipped to ±10."""
    derivative = np.zeros_like(errors)
    derivative[2:] = (errors[2:] - errors[:-2]) / (2 * period)
    d_term = kd * derivative
    d_term = np.where(np.abs(d_term) > KICK_LIMIT, d_term / 10.0, d_term)
    return np.clip(kp * errors + d_term, -10.0, 10.0)


def i_target(errors: np.ndarray, ki: float, period: float = 0.1, limit: float = 10.0) -> np.ndarray:
    """Integral command Ki · clip(Σ T e, ±limit) for an error sequence ``[T]`` (clamped running sum, as the PID)."""
    integral, out = 0.0, np.empty_like(errors)
    for t, e in enumerate(errors):
        integral = min(limit, max(-limit, integral + e * period))
        out[t] = ki * integral
    return out


def _pd_errors(env: BlimpAltitudeEnv, rng: np.random.Generator, seconds: float, first_dwell: float) -> np.ndarray:
    while True:
        controller = PID(PIDGains(kp=rng.uniform(5, 12), ki=0.0, kd=rng.uniform(5, 18)))
        plan = random_steps(rng, env.params.control_dt, seconds, first_dwell_s=first_dwell)
        flight = fly(env, controller, int(rng.integers(2**31)), {"plan": plan, "buoyancy": "neutral"})
        if not flight.terminated:
            return flight["error"]


def _i_errors(env: BlimpAltitudeEnv, rng: np.random.Generator, seconds: float, net_weight: float) -> np.ndarray:
    while True:
        plan = i_training(rng, env.params.control_dt, seconds, net_weight=net_weight)
        flight = fly(env, PID(), int(rng.integers(2**31)), {"plan": plan, "buoyancy": "neutral"})
        if not flight.terminated:
            return flight["error"]


def generate(
    target: str,
    windows: int,
    window_s: float,
    test_s: float,
    seed: int,
    gains: PIDGains,
    net_weight: float = I_TRAINING_NET_WEIGHT,
    progress: bool = False,
) -> ImitationData:
    """Fly ``windows`` training windows of ``window_s`` seconds and one ``test_s`` test sequence.

    Args:
        target: ``"pd"`` or ``"i"``.
        gains: the target controller's gains (Kp, Kd for ``pd``; Ki for ``i``).
        net_weight: half-range (N) of the I set's random net weight per set-point (``i`` only).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown imitation target {target!r}; valid: {', '.join(TARGETS)}")
    if windows < 1 or window_s <= 0 or test_s <= 0:
        raise ValueError(f"need windows >= 1 and positive durations, got {windows}, {window_s}, {test_s}")
    if net_weight < 0:
        raise ValueError(f"net_weight must be >= 0 N, got {net_weight}")
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    env = BlimpAltitudeEnv()

    def errors_for(seconds: float) -> np.ndarray:
        if target == "pd":
            return _pd_errors(env, rng, seconds, first_dwell=3.0)
        return _i_errors(env, rng, seconds, net_weight)

    def target_for(errors: np.ndarray) -> np.ndarray:
        return pd_target(errors, gains.kp, gains.kd) if target == "pd" else i_target(errors, gains.ki)

    train = [errors_for(window_s) for _ in tqdm(range(windows), desc=f"{target} data", disable=not progress)]
    test = errors_for(test_s)
    train_errors = np.stack(train)
    return ImitationData(train_errors, np.stack([target_for(e) for e in train_errors]), test, target_for(test))
