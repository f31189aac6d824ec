"""Physical and drivetrain parameters of the indoor micro-blimp (nominal values; docs/blimp.md, Environment).

Units: SI (kg, m, s, N) except the motor command ``u``, which is in the deployed code's units (``u ∈ [-10, 10]``;
the paper's volts are ``0.33 u``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

GRAVITY = 9.81


@dataclass(frozen=True)
class BlimpParameters:
    """Everything that defines one blimp; validated on construction (a bad value raises ``ValueError`` naming it).

    Attributes:
        mass: effective mass m_eff (body + added mass), kg.
        semi_axes: envelope ellipsoid semi-axes (a, b, c), m; vertical drag acts on the projected area π·a·b.
        linear_damping: viscous joint damping c_lin, N·s/m.
        air_density, air_viscosity: fluid for MuJoCo's ellipsoid drag model, kg/m³ and Pa·s.
        negative_net_weight: ΔW of the "negative" buoyancy mode, N (weight minus lift; 0.06 N hovers at u ≈ 3).
        max_command: clip of the motor command, code units.
        dead_band: |u| below this switches the motors off, code units (must be < max_command).
        pwm_quantization: duty = floor(9 + 3|u|)/45 when true, (9 + 3|u|)/45 otherwise.
        start_duty: duty at which the rotors start turning (d0).
        max_thrust: thrust at 100 % duty with the rotors pointing up, N.
        rotor_lag: first-order time constant of the normalised rotor speed, s.
        flip_time: time of a 180° servo rotation, s.
        lidar_resolution, lidar_noise, lidar_bias: rangefinder quantisation step, Gaussian σ and the half-width
            of the per-episode uniform bias, m.
        lidar_min, lidar_max: rangefinder limits, m.
        physics_dt, control_dt: MuJoCo step and controller period, s (control_dt a multiple of physics_dt).
        control_jitter: half-width of a uniform jitter of each control period, s (the period is rounded to whole
            physics steps; 0: every tick lasts control_dt).
        long_tick_probability, long_tick: chance that a control period lasts ``long_tick`` seconds instead (the
            real logs show occasional 0.3 s gaps).
        dropout_probability: chance per tick that the rangefinder returns no new reading (the last one is held).
        floor, ceiling: altitudes that end an episode (contact), m.
    """

    mass: float = 0.45
    semi_axes: tuple[float, float, float] = (0.70, 0.29, 0.29)
    linear_damping: float = 0.03
    air_density: float = 1.204
    air_viscosity: float = 1.8e-5
    negative_net_weight: float = 0.06
    max_command: float = 10.0
    dead_band: float = 0.3
    pwm_quantization: bool = True
    start_duty: float = 0.15
    max_thrust: float = 0.70
    rotor_lag: float = 0.15
    flip_time: float = 0.4
    lidar_resolution: float = 0.01
    lidar_noise: float = 0.005
    lidar_bias: float = 0.02
    lidar_min: float = 0.1
    lidar_max: float = 12.0
    physics_dt: float = 0.005
    control_dt: float = 0.1
    floor: float = 0.15
    ceiling: float = 3.5
    control_jitter: float = 0.0
    long_tick_probability: float = 0.0
    long_tick: float = 0.3
    dropout_probability: float = 0.0

    def __post_init__(self) -> None:
        positive = ("mass", "air_density", "max_command", "max_thrust", "rotor_lag", "flip_time", "physics_dt")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"blimp parameter {name} must be > 0, got {getattr(self, name)}")
        if len(self.semi_axes) != 3 or min(self.semi_axes) <= 0:
            raise ValueError(f"blimp parameter semi_axes must be three positive lengths, got {self.semi_axes}")
        non_negative = ("linear_damping", "air_viscosity", "dead_band", "lidar_resolution", "lidar_noise", "lidar_bias")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"blimp parameter {name} must be >= 0, got {getattr(self, name)}")
        if self.dead_band >= self.max_command:
            raise ValueError(f"blimp parameter dead_band ({self.dead_band}) must be < max_command ({self.max_command})")
        if not 0 <= self.start_duty < 1:
            raise ValueError(f"blimp parameter start_duty must be in [0, 1), got {self.start_duty}")
        ratio = self.control_dt / self.physics_dt
        if self.control_dt <= 0 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"blimp parameter control_dt ({self.control_dt}) must be a positive multiple of physics_dt "
                f"({self.physics_dt})"
            )
        if not 0 < self.floor < self.ceiling:
            raise ValueError(
                f"blimp parameters need 0 < floor < ceiling, got floor={self.floor}, ceiling={self.ceiling}"
            )
        if not 0 <= self.control_jitter < self.control_dt:
            raise ValueError(f"blimp parameter control_jitter must be in [0, control_dt), got {self.control_jitter}")
        for name in ("long_tick_probability", "dropout_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"blimp parameter {name} must be in [0, 1], got {getattr(self, name)}")
        if self.long_tick < self.physics_dt:
            raise ValueError(f"blimp parameter long_tick must be >= physics_dt, got {self.long_tick}")
        if self.lidar_min >= self.lidar_max:
            raise ValueError(f"blimp parameter lidar_min ({self.lidar_min}) must be < lidar_max ({self.lidar_max})")

    @property
    def substeps(self) -> int:
        """Physics steps per (nominal) control step."""
        return round(self.control_dt / self.physics_dt)

    @property
    def timing_varies(self) -> bool:
        """Whether control periods are drawn per tick (jitter or long ticks)."""
        return self.control_jitter > 0 or self.long_tick_probability > 0

    def tick_substeps(self, rng: np.random.Generator) -> int:
        """Physics steps of one control period with the jitter and long ticks applied (``substeps`` without)."""
        if not self.timing_varies:
            return self.substeps
        if self.long_tick_probability and rng.random() < self.long_tick_probability:
            period = self.long_tick
        else:
            period = self.control_dt + rng.uniform(-self.control_jitter, self.control_jitter)
        return max(1, round(period / self.physics_dt))

    @classmethod
    def from_dict(cls, values: dict) -> BlimpParameters:
        """Build from a mapping, rejecting unknown names with the list of valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown blimp parameter(s): {', '.join(unknown)}; valid: {', '.join(names)}")
        values = dict(values)
        if "semi_axes" in values:
            values["semi_axes"] = tuple(float(v) for v in values["semi_axes"])
        return cls(**values)

    def randomized(self, rng: np.random.Generator) -> BlimpParameters:
        """A copy with the training randomisation (docs/blimp.md, Environment) applied."""

        def scale(value: float, spread: float) -> float:
            return float(value * rng.uniform(1 - spread, 1 + spread))

        axes = scale(1.0, 0.10)
        return dataclasses.replace(
            self,
            mass=scale(self.mass, 0.30),
            semi_axes=tuple(a * axes for a in self.semi_axes),
            linear_damping=float(rng.uniform(0.0, 2 * self.linear_damping)),
            air_density=scale(self.air_density, 0.05),
            dead_band=float(rng.uniform(0.2, 0.4)),
            start_duty=float(rng.uniform(0.10, 0.20)),
            max_thrust=scale(self.max_thrust, 0.25),
            rotor_lag=float(rng.uniform(0.08, 0.25)),
            flip_time=float(rng.uniform(0.25, 0.6)),
            lidar_noise=float(rng.uniform(0.003, 0.008)),
        )
