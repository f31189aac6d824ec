"""Blimp environment: hand-checked physics and drivetrain facts, sensor model, profiles, registration, bad input."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from envs import check_env_id
from envs.blimp import ENV_ID, PROFILES, BlimpAltitudeEnv, BlimpParameters, Thruster, command_duty

QUIET_SENSOR = {"lidar_noise": 0.0, "lidar_bias": 0.0}


def hold(env: BlimpAltitudeEnv, action: float, ticks: int) -> dict:
    info: dict = {}
    for _ in range(ticks):
        _, _, terminated, _, info = env.step([action])
        if terminated:
            break
    return info


def test_neutral_blimp_without_thrust_stays_put() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, params=QUIET_SENSOR)
    _, info = env.reset(seed=0)
    assert info["z"] == pytest.approx(1.5)
    info = hold(env, 0.0, 100)  # 10 s
    assert info["z"] == pytest.approx(1.5, abs=1e-9) and info["vz"] == pytest.approx(0.0, abs=1e-9)
    assert info["thrust"] == 0.0 and info["flips"] == 0


@pytest.mark.parametrize("damping", [0.0, 0.03])
def test_negative_buoyancy_sinks_at_terminal_speed(damping: float) -> None:
    """Net weight W = ½ ρ (π a b) v² + c v (MuJoCo ellipsoid blunt drag, C_D ≈ 1 for vertical translation)."""
    weight = 0.075
    params = {"linear_damping": damping, "negative_net_weight": weight, "ceiling": 20.0}
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, buoyancy="negative", params=params)
    env.reset(seed=0)
    env.data.qpos[0] = 15.0
    info = hold(env, 0.0, 150)
    k = 0.5 * 1.204 * math.pi * 0.70 * 0.29
    expected = (-damping + math.sqrt(damping**2 + 4 * k * weight)) / (2 * k)  # 0.442 m/s without damping
    assert -info["vz"] == pytest.approx(expected, rel=2e-3)


def test_duty_dead_band_and_pwm_quantisation() -> None:
    p = BlimpParameters()
    assert command_duty(0.29, p) == 0.0 and command_duty(-0.29, p) == 0.0
    assert command_duty(0.3, p) == pytest.approx(9 / 45)  # floor(9 + 0.9) = 9 counts
    assert command_duty(1.0, p) == command_duty(1.3, p) == pytest.approx(12 / 45)  # steps of 1/3 code unit
    assert command_duty(1.34, p) == pytest.approx(13 / 45)
    assert command_duty(25.0, p) == command_duty(10.0, p) == pytest.approx(39 / 45)  # clipped at ±10
    smooth = BlimpParameters(pwm_quantization=False)
    assert command_duty(1.3, smooth) == pytest.approx(12.9 / 45)


def test_dead_band_gives_zero_thrust_in_the_environment() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, params=QUIET_SENSOR)
    env.reset(seed=0)
    info = hold(env, 0.029, 30)  # u = 0.29 code units
    assert info["duty"] == 0.0 and info["thrust"] == 0.0 and info["z"] == pytest.approx(1.5, abs=1e-9)


def test_thrust_is_proportional_to_rotor_speed_squared_with_first_order_lag() -> None:
    p = BlimpParameters()
    thruster = Thruster(p)
    thruster.command(10.0)
    w_cmd = (39 / 45 - 0.15) / 0.85
    for _ in range(30):  # exactly one rotor time constant (0.15 s)
        force = thruster.step()
    assert thruster.w == pytest.approx(w_cmd * (1 - math.exp(-1)), rel=1e-12)
    assert force == pytest.approx(0.70 * thruster.w**2, rel=1e-12)
    for _ in range(2000):
        force = thruster.step()
    assert force == pytest.approx(0.70 * w_cmd**2, rel=1e-9)  # 0.4976 N at u = 10
    assert force == pytest.approx(0.497616, abs=1e-6)


def test_direction_change_takes_the_flip_time() -> None:
    p = BlimpParameters()
    thruster = Thruster(p)
    thruster.command(5.0)
    for _ in range(2000):
        thruster.step()
    up_force = thruster.step()
    thruster.command(-5.0)
    forces, angles = [], []
    for _ in range(100):
        forces.append(thruster.step())
        angles.append(thruster.theta)
    steps_to_flip = next(i for i, a in enumerate(angles) if a >= math.pi - 1e-12) + 1
    assert steps_to_flip * p.physics_dt == pytest.approx(p.flip_time)  # 0.4 s at π / t_flip rad/s
    first_down = next(i for i, f in enumerate(forces) if f < 0) + 1
    assert first_down == 41  # θ_n = nπ/80: cos θ < 0 only after 90°, i.e. from the 41st step (0.205 s)
    assert forces[-1] == pytest.approx(-up_force)  # same |u|: same thrust, reversed
    assert thruster.flips == 1
    thruster.command(0.1)  # inside the dead band: the servo holds its angle, no flip counted
    thruster.step()
    assert thruster.theta == pytest.approx(math.pi) and thruster.flips == 1


def test_sensor_is_quantised_and_observation_is_the_error() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.5)
    obs, info = env.reset(seed=3)
    for _ in range(20):
        obs, _, _, _, info = env.step([0.4])
        assert round(info["measured"] / 0.01) * 0.01 == pytest.approx(info["measured"], abs=1e-12)
        assert abs(info["measured"] - info["z"]) < 0.02 + 0.005 * 5 + 0.005 + 0.005  # bias + 5σ + tick + 5 ms lag
        assert obs.shape == (1,) and obs[0] == pytest.approx(info["reference"] - info["measured"], abs=1e-6)
    assert info["reference"] == 1.5  # the step comes after 20 s
    full = BlimpAltitudeEnv(observation="full")
    obs, _ = full.reset(seed=0)
    assert obs.shape == (4,)


def test_info_reward_and_floor_contact() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, buoyancy="negative", params={"negative_net_weight": 0.5})
    env.reset(seed=0)
    expected = {"z", "vz", "reference", "measured", "thrust", "servo_angle", "duty", "net_weight", "u", "flips"}
    terminated, ticks, reward, info = False, 0, 0.0, {}
    while not terminated:
        _, reward, terminated, truncated, info = env.step([0.0])
        ticks += 1
        assert not truncated and ticks < 200
    assert expected <= set(info) and info["net_weight"] == pytest.approx(0.5)
    assert reward == pytest.approx(-abs(1.5 - info["z"]) - 10.0)


def test_paper_profiles_and_episode_length() -> None:
    env = BlimpAltitudeEnv(profile="paper-full")
    env.reset(seed=0)
    assert env.plan is not None and len(env.plan.reference) == 3500
    assert [env.plan.reference[h[0]] for h in env.plan.holds] == [0.5, 1.0, 1.5, 1.0, 0.5]
    assert env.net_weight_schedule[0] == pytest.approx(0.06)  # the protocol is negatively buoyant
    env.reset(seed=0, options={"profile": "random-steps", "duration_s": 3.0})
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step([0.0])
        done = terminated or truncated
        steps += 1
    assert steps == 30
    for name in PROFILES:
        plan = PROFILES[name](np.random.default_rng(0), 0.1)
        assert np.all((plan.reference >= 0.4) & (plan.reference <= 2.5)), name


def test_registered_for_gymnasium_and_the_factory() -> None:
    """``gym.make`` builds the same environment as the class: identical flights for the same seed and actions,
    the observation is the tracking error, and a 5 s episode is truncated after 50 ticks of 0.1 s."""
    check_env_id(ENV_ID)
    env = gym.make(ENV_ID, profile="sine", duration_s=5.0)
    direct = BlimpAltitudeEnv(profile="sine", duration_s=5.0)
    obs, info = env.reset(seed=1)
    obs_direct, _ = direct.reset(seed=1)
    start, references = info["z"], []
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, obs_direct)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, 60)
    ticks, truncated = 0, False
    while not truncated:
        obs, reward, terminated, truncated, info = env.step([actions[ticks]])
        expected = direct.step([actions[ticks]])
        ticks += 1
        np.testing.assert_array_equal(obs, expected[0])
        assert (reward, terminated, truncated, info["z"]) == (expected[1], expected[2], expected[3], expected[4]["z"])
        assert not terminated and obs[0] == pytest.approx(info["reference"] - info["measured"], abs=1e-6)
        references.append(info["reference"])
    assert ticks == 50
    assert max(references) - min(references) > 0.01 and abs(info["z"] - start) > 1e-3  # a sine; the blimp moved


def test_bad_input_is_rejected_with_the_name() -> None:
    with pytest.raises(ValueError, match="unknown reference profile 'stairs'; valid: paper-pd, paper-full"):
        BlimpAltitudeEnv(profile="stairs")
    env = BlimpAltitudeEnv()
    with pytest.raises(ValueError, match="valid: paper-pd"):
        env.reset(options={"profile": "stairs"})
    with pytest.raises(ValueError, match="unknown buoyancy mode 'heavy'; valid: neutral, negative, random, drifting"):
        env.reset(options={"buoyancy": "heavy"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"wind": 1})
    with pytest.raises(ValueError, match="mass must be > 0"):
        BlimpAltitudeEnv(params={"mass": -0.4})
    with pytest.raises(ValueError, match=r"dead_band \(12.0\) must be < max_command"):
        BlimpParameters(dead_band=12.0)
    with pytest.raises(ValueError, match="unknown blimp parameter.*helium"):
        BlimpParameters.from_dict({"helium": 1.0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step([float("nan")])


def test_randomised_dynamics_stay_in_the_documented_ranges() -> None:
    env = BlimpAltitudeEnv(randomize=True)
    masses = set()
    for seed in range(5):
        env.reset(seed=seed)
        assert 0.45 * 0.7 <= env.params.mass <= 0.45 * 1.3 and 0.25 <= env.params.flip_time <= 0.6
        masses.add(env.params.mass)
    assert len(masses) == 5


def test_landed_blimp_can_stay_in_the_episode() -> None:
    params = {"negative_net_weight": 0.5}
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, buoyancy="negative", params=params, terminate_on_contact=False)
    env.reset(seed=0)
    info = hold(env, 0.0, 100)
    assert info["z"] == pytest.approx(0.15, abs=2e-3)  # resting on the slide joint's lower limit
    _, reward, terminated, _, _ = env.step([0.0])
    assert not terminated and reward < -10.0
