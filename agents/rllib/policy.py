"""A trained RLlib algorithm as a deployable policy with the SB3-style ``predict`` used by
:func:`experiments.evaluation.rollout`: raw observations in, deterministic environment actions out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from agents.actors import ActorNetwork
from agents.rllib.compat import frozen_observation_filter


class RLlibPolicy:
    """Deterministic policy of an RLlib ``Algorithm`` built with :mod:`agents.rllib.modules`.

    ``predict(obs[n, obs_dim])`` normalises with a frozen copy of the algorithm's ``MeanStdFilter``
    statistics (if it has one), runs the module's inference forward pass, takes the deterministic action
    of its action distribution and maps it from [-1, 1] to the action bounds, as RLlib's module-to-env
    pipeline does with ``normalize_actions=True``.
    """

    def __init__(self, module: Any, obs_filter: Any | None, action_space: spaces.Box, actor_config: dict) -> None:
        self.module = module
        self.obs_filter = obs_filter
        self.action_space = action_space
        self.actor_config = actor_config

    @classmethod
    def from_algorithm(cls, algorithm: Any) -> RLlibPolicy:
        module = algorithm.get_module()
        return cls(module, frozen_observation_filter(algorithm), module.action_space, module.model_config["actor"])

    @property
    def actor_network(self) -> ActorNetwork:
        return self.module.network

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the module sees them during training ``[n, obs_dim]``."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.obs_filter is None:
            return obs
        return self.obs_filter(obs, update=False).astype(np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """``(actions [n, act_dim], None)`` for raw observations ``[n, obs_dim]`` (deterministic only)."""
        if not deterministic:
            raise ValueError("RLlibPolicy.predict is deterministic only (exploration runs inside RLlib)")
        obs = torch.from_numpy(self.normalize(np.atleast_2d(observation)))
        with torch.no_grad():
            inputs = self.module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
            dist = self.module.get_inference_action_dist_cls().from_logits(inputs).to_deterministic()
            action = dist.sample().numpy()
        low, high = self.action_space.low, self.action_space.high
        return np.clip(low + (action + 1.0) * (high - low) / 2.0, low, high).astype(np.float32), None
