"""Shared fixtures: single-threaded torch and a registered NaN-emitting environment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

torch.set_num_threads(1)


class NaNAfterSteps(gym.Env):
    """Observations become NaN at the 4th step: exercises the NaN guard."""

    metadata = {"render_modes": ["rgb_array"]}
    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(3, np.nan if self.t >= 4 else 0.1, np.float32)
        return obs, 0.0, False, self.t >= 50, {}


if "spikerl-test/NaNAfterSteps-v0" not in gym.registry:
    gym.register("spikerl-test/NaNAfterSteps-v0", entry_point=NaNAfterSteps)
