"""Vectorised-environment wrappers."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from envs.errors import UserError


class NonFiniteObservationError(UserError, ValueError):
    """An environment returned NaN or inf in an observation."""


class NaNGuard(VecEnvWrapper):
    """Raise :class:`NonFiniteObservationError` naming the env step and sub-environment as soon as an
    observation (or reward) is NaN or infinite, before it reaches normalisation statistics or a replay buffer.

    The last observation of an episode, which SB3 stores in ``info["terminal_observation"]`` (the returned one
    is already the next episode's first), is checked too."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.steps = 0

    def _check(self, obs: np.ndarray, what: str) -> None:
        finite = np.isfinite(obs)
        if not finite.all():
            bad_env = int(np.argwhere(~finite.reshape(finite.shape[0], -1).all(axis=1))[0, 0])
            raise NonFiniteObservationError(
                f"non-finite {what} at env step {self.steps} (sub-environment {bad_env}): {obs[bad_env]}"
            )

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._check(obs, "observation after reset")
        return obs

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.steps += 1
        self._check(obs, "observation")
        self._check(np.asarray(rewards, dtype=np.float64).reshape(-1, 1), "reward")
        for index, (done, info) in enumerate(zip(dones, infos)):
            terminal = info.get("terminal_observation") if done else None
            if terminal is not None and not np.isfinite(terminal).all():
                raise NonFiniteObservationError(
                    f"non-finite last observation of an episode at env step {self.steps} "
                    f"(sub-environment {index}): {terminal}"
                )
        return obs, rewards, dones, infos
