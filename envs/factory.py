"""Build vectorised gymnasium environments (MuJoCo tasks and the project's own) with clear errors."""

from __future__ import annotations

import difflib
import importlib

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from envs.errors import UserError
from envs.wrappers import NaNGuard

MUJOCO_TASKS = (
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Humanoid-v5",
    "HumanoidStandup-v5",
    "InvertedDoublePendulum-v5",
    "InvertedPendulum-v5",
    "Pusher-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Walker2d-v5",
)


class UnknownEnvironmentError(UserError, ValueError):
    """The environment id is not registered with gymnasium."""


class IncompatibleEnvironmentError(UserError, ValueError):
    """The environment's spaces do not fit the requested algorithm or actor."""


def check_env_id(env_id: str) -> None:
    """Raise :class:`UnknownEnvironmentError` listing close matches and the MuJoCo tasks if ``env_id`` is unknown.

    ``module:EnvId`` (gymnasium's syntax for user environments) first imports ``module``, which registers
    ``EnvId``, then checks ``EnvId``.
    """
    module, sep, bare_id = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UnknownEnvironmentError(
                f"environment {env_id!r}: cannot import module {module!r} ({err}); it must be importable "
                "and register the environment with gymnasium.register"
            ) from err
    if bare_id in gym.registry:
        return
    close = difflib.get_close_matches(bare_id, list(gym.registry), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownEnvironmentError(
        f"unknown environment {env_id!r}.{hint} MuJoCo tasks: {', '.join(MUJOCO_TASKS)} "
        "(any id registered with gymnasium works, or module:EnvId for one registered on import of module)"
    )


def check_continuous_actions(env_id: str, action_space: spaces.Space, algo: str) -> None:
    """The actors emit continuous actions; every supported algorithm here needs a ``Box`` action space."""
    if not isinstance(action_space, spaces.Box):
        raise IncompatibleEnvironmentError(
            f"{algo.upper()} with these actors needs a continuous (Box) action space, but {env_id} has {action_space}"
        )


def check_training_env(env_id: str, algo: str) -> None:
    """Both checks above before anything is written: the id is known, and one instance (made and closed at once)
    has a continuous action space."""
    check_env_id(env_id)
    env = gym.make(env_id)
    try:
        check_continuous_actions(env_id, env.action_space, algo)
    finally:
        env.close()


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int = 0,
    normalize_obs: bool = True,
    clip_obs: float = 3.0,
    training: bool = True,
    env_kwargs: dict | None = None,
) -> VecEnv:
    """``n_envs`` copies of ``env_id`` (each in a ``Monitor``), guarded against NaN observations, and, if
    ``normalize_obs``, wrapped in ``VecNormalize(norm_obs=True, norm_reward=False, clip_obs=clip_obs)``.

    Evaluation environments pass ``training=False`` so their statistics stay frozen.
    """
    check_env_id(env_id)
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    venv: VecEnv = sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv, env_kwargs=env_kwargs)
    venv = NaNGuard(venv)
    if normalize_obs:
        venv = VecNormalize(venv, training=training, norm_obs=True, norm_reward=False, clip_obs=clip_obs)
    return venv
