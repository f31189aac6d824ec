"""Gymnasium blimp altitude-control environment on MuJoCo (10 Hz control over 5 ms physics steps).

Observation (default ``"error"``): ``[h_ref - h_meas]`` in m, what the PID and the SNN see; ``"full"`` adds
``[h_ref, h_meas, u_prev / max_command]``. Action: ``[-1, 1]``, scaled by ``max_command`` to code units.
Reward (for RL): ``-|h_ref - z| - 0.02 |u|/10 - 0.02 |Δu|/10``, and -10 for each tick at floor or ceiling contact
(which ends the episode unless ``terminate_on_contact=False``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.blimp.model import build_model, gravcomp_for
from envs.blimp.params import BlimpParameters
from envs.blimp.profiles import PROFILES, ReferencePlan, make_plan
from envs.blimp.thruster import Thruster

BUOYANCY_MODES = ("neutral", "negative", "random", "drifting")
OBSERVATION_MODES = ("error", "full")
RESET_OPTIONS = ("profile", "duration_s", "buoyancy", "randomize", "step", "plan")
CONTACT_PENALTY = 10.0
RANDOM_NET_WEIGHT = 0.07  # N, bound of the "random" and "drifting" buoyancy modes
DRIFT_PER_MINUTE = 0.01  # N/min, bound of the drift rate


def _check_choice(kind: str, value: str, valid: tuple[str, ...] | list[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


class BlimpAltitudeEnv(gym.Env):
    """1-DoF indoor micro-blimp with dead band, PWM, rotor lag, thrust ∝ ω², servo flips and a noisy rangefinder.

    Args:
        profile: reference profile name (see :data:`envs.blimp.profiles.PROFILES`).
        duration_s: episode length for profiles whose length is free (random-steps, sine).
        buoyancy: ``neutral``, ``negative``, ``random`` or ``drifting``; ``None`` takes the profile's own.
        randomize: sample the blimp's parameters per episode (ranges in docs/blimp.md, Environment).
        observation: ``"error"`` or ``"full"``.
        params: nominal :class:`BlimpParameters` (or a mapping of overrides).
        step: Δh of the ``paper-pd`` profile (random from the protocol's set when ``None``).
        render_mode: ``None`` or ``"rgb_array"``.
        terminate_on_contact: end the episode when the blimp touches floor or ceiling (RL); when false the slide
            joint's limits hold it there (it lands) and the episode runs on, as in the closed-loop comparison.

    ``reset(options=...)`` accepts ``profile``, ``duration_s``, ``buoyancy``, ``randomize``, ``step`` and ``plan``
    (a ready :class:`ReferencePlan`) for that episode only.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        profile: str = "random-steps",
        duration_s: float | None = 60.0,
        buoyancy: str | None = None,
        randomize: bool = False,
        observation: str = "error",
        params: BlimpParameters | dict | None = None,
        step: float | None = None,
        render_mode: str | None = None,
        terminate_on_contact: bool = True,
    ) -> None:
        _check_choice("reference profile", profile, list(PROFILES))
        if render_mode is not None:
            _check_choice("render mode", render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.terminate_on_contact = terminate_on_contact
        self._renderer: mujoco.Renderer | None = None
        if buoyancy is not None:
            _check_choice("buoyancy mode", buoyancy, BUOYANCY_MODES)
        _check_choice("observation mode", observation, OBSERVATION_MODES)
        if isinstance(params, dict):
            params = BlimpParameters.from_dict(params)
        self.nominal = params or BlimpParameters()
        self.defaults = {"profile": profile, "duration_s": duration_s, "buoyancy": buoyancy, "randomize": randomize}
        self.default_step = step
        self.observation_mode = observation
        dim = 1 if observation == "error" else 4
        self.observation_space = spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._set_params(self.nominal)
        self.plan: ReferencePlan | None = None

    # ---- construction ------------------------------------------------------------------------------
    def _set_params(self, params: BlimpParameters) -> None:
        self.params = params
        self.model = build_model(params)
        self.data = mujoco.MjData(self.model)
        self.thruster = Thruster(params)
        self._body = self.model.body("blimp").id

    # ---- gymnasium API -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s): {', '.join(unknown)}; valid: {', '.join(RESET_OPTIONS)}")
        settings = {**self.defaults, **{k: v for k, v in options.items() if k in self.defaults}}
        rng = self.np_random
        params = self.nominal.randomized(rng) if settings["randomize"] else self.nominal
        if params is not self.params:
            self._set_params(params)
        if "plan" in options:
            plan = options["plan"]
            if not isinstance(plan, ReferencePlan):
                raise ValueError(f"reset option plan must be a ReferencePlan, got {type(plan).__name__}")
        else:
            _check_choice("reference profile", settings["profile"], list(PROFILES))
            step = options.get("step", self.default_step)
            plan = make_plan(settings["profile"], rng, params.control_dt, settings["duration_s"], step)
        buoyancy = settings["buoyancy"] or plan.buoyancy
        _check_choice("buoyancy mode", buoyancy, BUOYANCY_MODES)
        self.plan = plan
        self.net_weight_schedule = self._net_weights(buoyancy, plan, rng)
        self.lidar_bias = float(rng.uniform(-params.lidar_bias, params.lidar_bias))
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[0] = plan.reference[0]
        self.model.body_gravcomp[self._body] = gravcomp_for(self.net_weight_schedule[0], params)
        mujoco.mj_forward(self.model, self.data)
        self.thruster.reset()
        self.tick = 0
        self.u_prev = 0.0
        self.measured = self._measure(dropout=False)
        return self._observation(), self._info(vertical_force=0.0)

    def step(self, action):
        if self.plan is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (1,):
            raise ValueError(f"action must have shape (1,), got {action.shape}")
        if not np.isfinite(action[0]):
            raise ValueError(f"action must be finite, got {action[0]}")
        p = self.params
        u = self.thruster.command(min(max(float(action[0]), -1.0), 1.0) * p.max_command)
        self.model.body_gravcomp[self._body] = gravcomp_for(self.net_weight_schedule[self.tick], p)
        forces = self.thruster.forces(p.tick_substeps(self.np_random))
        model, data, ctrl, mj_step = self.model, self.data, self.data.ctrl, mujoco.mj_step
        for force in forces:
            ctrl[0] = force
            mj_step(model, data)
        force = forces[-1]
        self.tick += 1
        self.measured = self._measure()
        z = float(self.data.qpos[0])
        reference = self.reference
        reward = -abs(reference - z) - 0.02 * abs(u) / p.max_command - 0.02 * abs(u - self.u_prev) / p.max_command
        self.u_prev = u
        contact = z <= p.floor + 1e-3 or z >= p.ceiling - 1e-3
        if contact:
            reward -= CONTACT_PENALTY
        terminated = contact and self.terminate_on_contact
        truncated = self.tick >= len(self.plan.reference)
        return self._observation(), float(reward), terminated, truncated and not terminated, self._info(force)

    def render(self) -> np.ndarray | None:
        """An RGB frame ``[240, 320, 3]`` of the blimp (``render_mode="rgb_array"``), else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None or self._rendered_model is not self.model:
            self._renderer, self._rendered_model = mujoco.Renderer(self.model, 240, 320), self.model
        camera = mujoco.MjvCamera()
        camera.lookat[:] = (0.0, 0.0, 1.5)
        camera.distance, camera.azimuth, camera.elevation = 5.0, 90.0, -5.0
        self._renderer.update_scene(self.data, camera)
        return self._renderer.render()

    # ---- internals ---------------------------------------------------------------------------------
    @property
    def reference(self) -> float:
        assert self.plan is not None
        return float(self.plan.reference[min(self.tick, len(self.plan.reference) - 1)])

    def _net_weights(self, buoyancy: str, plan: ReferencePlan, rng: np.random.Generator) -> np.ndarray:
        """Net weight ΔW (N) per control tick for the buoyancy mode plus the plan's disturbances."""
        ticks = len(plan.reference)
        if buoyancy == "neutral":
            base = np.zeros(ticks)
        elif buoyancy == "negative":
            base = np.full(ticks, self.params.negative_net_weight)
        else:
            base = np.full(ticks, rng.uniform(-RANDOM_NET_WEIGHT, RANDOM_NET_WEIGHT))
            if buoyancy == "drifting":
                rate = rng.uniform(-DRIFT_PER_MINUTE, DRIFT_PER_MINUTE) / 60.0
                base = base + rate * self.params.control_dt * np.arange(ticks)
        return base + plan.net_weight_offset

    def _measure(self, dropout: bool = True) -> float:
        """Rangefinder reading with bias, Gaussian noise, quantisation and range limits, m; a dropout (probability
        ``dropout_probability``) holds the previous reading."""
        p = self.params
        if dropout and p.dropout_probability and self.np_random.random() < p.dropout_probability:
            return self.measured
        reading = float(self.data.sensordata[0]) + self.lidar_bias + p.lidar_noise * self.np_random.standard_normal()
        if p.lidar_resolution > 0:
            reading = round(reading / p.lidar_resolution) * p.lidar_resolution
        return min(max(reading, p.lidar_min), p.lidar_max)

    def _observation(self) -> np.ndarray:
        error = self.reference - self.measured
        if self.observation_mode == "error":
            return np.array([error], np.float32)
        return np.array([error, self.reference, self.measured, self.u_prev / self.params.max_command], np.float32)

    def _info(self, vertical_force: float) -> dict[str, float]:
        return {
            "z": float(self.data.qpos[0]),
            "vz": float(self.data.qvel[0]),
            "reference": self.reference,
            "measured": self.measured,
            "thrust": vertical_force,
            "servo_angle": self.thruster.theta,
            "duty": self.thruster.duty,
            "rotor_speed": self.thruster.w,
            "net_weight": float(self.net_weight_schedule[min(self.tick, len(self.net_weight_schedule) - 1)]),
            "u": self.u_prev,
            "flips": self.thruster.flips,
        }
