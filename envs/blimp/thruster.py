"""Drivetrain of the blimp: motor command -> dead band -> PWM duty -> rotor lag -> thrust ∝ ω² -> servo direction.

Per control tick the command ``u`` (code units) sets a duty and a direction; per physics step the rotor speed
and the servo angle move towards their targets::

    duty   = 0                                   if |u| < dead_band
           = floor(9 + 3|u|) / 45                otherwise (without quantisation: (9 + 3|u|) / 45)
    w_cmd  = max(0, (duty - d0) / (1 - d0))      normalised rotor speed target
    w     += (w_cmd - w) (1 - exp(-dt / τ_m))    exact first-order lag
    θ     -> 0 (u > 0) or π (u < 0) at π / t_flip rad/s; held inside the dead band
    F      = T_max w² cos θ                      vertical force, N
"""

from __future__ import annotations

import math

from envs.blimp.params import BlimpParameters

PWM_RANGE = 45.0
PWM_OFFSET = 9.0
PWM_SLOPE = 3.0


def command_duty(u: float, params: BlimpParameters) -> float:
    """PWM duty cycle in [0, 1] for command ``u`` (code units, clipped to ±max_command)."""
    magnitude = min(abs(u), params.max_command)
    if magnitude < params.dead_band:
        return 0.0
    counts = PWM_OFFSET + PWM_SLOPE * magnitude
    if params.pwm_quantization:
        counts = math.floor(counts)
    return min(counts / PWM_RANGE, 1.0)


class Thruster:
    """State (normalised rotor speed ``w``, servo angle ``theta``) of the two-rotor, servo-flipped thruster."""

    def __init__(self, params: BlimpParameters) -> None:
        self.params = params
        self.lag_gain = 1.0 - math.exp(-params.physics_dt / params.rotor_lag)
        self.servo_step = math.pi * params.physics_dt / params.flip_time
        self.reset()

    def reset(self, theta: float = 0.0) -> None:
        self.w = 0.0
        self.theta = theta
        self.duty = 0.0
        self.target_theta = theta
        self.flips = 0
        self._direction = 0

    def command(self, u: float) -> float:
        """Apply a control-tick command; returns the clipped command. Counts a flip on each direction change."""
        p = self.params
        u = max(-p.max_command, min(p.max_command, u))
        self.duty = command_duty(u, p)
        if self.duty > 0.0:
            direction = 1 if u > 0 else -1
            if self._direction != 0 and direction != self._direction:
                self.flips += 1
            self._direction = direction
            self.target_theta = 0.0 if direction > 0 else math.pi
        return u

    def step(self) -> float:
        """Advance one physics step; returns the vertical force in N (positive up)."""
        return self.forces(1)[0]

    def forces(self, steps: int) -> list[float]:
        """Advance ``steps`` physics steps of one control tick; returns each step's vertical force, N (positive up).

        The drivetrain does not depend on the body's motion, so a tick's forces are known before MuJoCo steps."""
        p = self.params
        w_cmd = max(0.0, (self.duty - p.start_duty) / (1.0 - p.start_duty)) if self.duty > 0.0 else 0.0
        w, theta, target, gain, servo_step = self.w, self.theta, self.target_theta, self.lag_gain, self.servo_step
        forces = []
        for _ in range(steps):
            w += (w_cmd - w) * gain
            delta = target - theta
            theta += servo_step if delta > servo_step else -servo_step if delta < -servo_step else delta
            forces.append(p.max_thrust * w * w * math.cos(theta))
        self.w, self.theta = w, theta
        return forces
