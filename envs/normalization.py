"""Observation normalisation statistics that travel inside a saved model.

Observations are z-scored with running statistics and clipped (PopSAN clips at ±3, matching the encoder
centres on [-3, 3]): ``clip((obs - mean) / sqrt(var + eps), -clip, clip)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.vec_env import VecNormalize


@dataclass
class ObservationStats:
    """Running mean/variance of observations plus the clip range, as used by :class:`VecNormalize`."""

    mean: np.ndarray
    var: np.ndarray
    count: float
    clip: float
    epsilon: float

    @classmethod
    def from_vec_normalize(cls, env: VecNormalize) -> ObservationStats:
        rms = env.obs_rms
        return cls(rms.mean.copy(), rms.var.copy(), float(rms.count), float(env.clip_obs), float(env.epsilon))

    def apply_to(self, env: VecNormalize) -> None:
        """Load these statistics into ``env`` (shapes must match)."""
        if env.obs_rms.mean.shape != self.mean.shape:
            raise ValueError(
                f"normalisation statistics are for observations of shape {self.mean.shape}, "
                f"the environment has {env.obs_rms.mean.shape}"
            )
        env.obs_rms.mean = self.mean.copy()
        env.obs_rms.var = self.var.copy()
        env.obs_rms.count = self.count
        env.clip_obs = self.clip
        env.epsilon = self.epsilon

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Normalise raw observations ``[..., obs_dim]`` exactly as :class:`VecNormalize` does."""
        scaled = (obs - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)
