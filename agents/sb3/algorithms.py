"""SB3 algorithms with two additions the spiking-actor recipes need.

1. **Separate actor learning rate.** SB3 refreshes every optimizer's learning rate from one schedule at
   each ``train()`` call. Here, optimizer parameter groups tagged ``lr_role="actor"`` (the actor network,
   and PPO's log-std) follow ``actor_learning_rate``; all other groups (critics, SAC's log-std head) follow
   ``learning_rate``. Both are logged to TensorBoard.
2. **Observation statistics inside the model.** ``save()`` stores the ``VecNormalize`` statistics of the
   training env in the zip.
3. **``predict`` always takes raw observations**, whether the model is the one ``learn()`` trained (it
   normalises with the live statistics of its ``VecNormalize`` env) or a loaded one (with the statistics
   saved in it, or those of the ``VecNormalize`` env it was loaded with). So ``model.predict(raw_obs)``
   gives the same actions before and after ``save``/``load``. SB3's own exploration step, which passes the
   already-normalised ``_last_obs``, is the one internal exception and is handled here.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import DDPG as SB3DDPG
from stable_baselines3 import PPO as SB3PPO
from stable_baselines3 import SAC as SB3SAC
from stable_baselines3 import TD3 as SB3TD3
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecNormalize

from agents.actors import ActorNetwork
from agents.sb3 import ppo, sac, td3
from agents.sb3.common import ACTOR_ROLE
from envs.normalization import ObservationStats


class SpikingAlgorithmMixin:
    """Adds ``actor_learning_rate`` and model-embedded observation statistics to an SB3 algorithm."""

    def __init__(self, *args, actor_learning_rate: float | None = None, **kwargs) -> None:
        self.actor_learning_rate = actor_learning_rate
        self.obs_normalization: ObservationStats | None = None
        self.latest_eval_return: float | None = None
        self._input_normalized = False  # True only while SB3's _sample_action predicts on normalised _last_obs
        super().__init__(*args, **kwargs)

    def _setup_lr_schedule(self) -> None:
        super()._setup_lr_schedule()
        rate = self.learning_rate if self.actor_learning_rate is None else self.actor_learning_rate
        self.actor_lr_schedule = FloatSchedule(rate)

    def _update_learning_rate(self, optimizers: list[torch.optim.Optimizer] | torch.optim.Optimizer) -> None:
        progress = self._current_progress_remaining
        rates = {ACTOR_ROLE: self.actor_lr_schedule(progress), None: self.lr_schedule(progress)}
        self.logger.record("train/learning_rate", rates[None])
        self.logger.record("train/actor_learning_rate", rates[ACTOR_ROLE])
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            for group in optimizer.param_groups:
                group["lr"] = rates[group.get("lr_role")]

    def save(self, path, exclude=None, include=None) -> None:  # type: ignore[override]
        venv = self.get_vec_normalize_env()
        if isinstance(venv, VecNormalize):
            self.obs_normalization = ObservationStats.from_vec_normalize(venv)
        super().save(path, exclude=exclude, include=include)

    def normalize_observation(self, observation: np.ndarray) -> np.ndarray:
        """Raw observations ``[n, obs_dim]`` -> the actor's input: z-scored and clipped with the statistics of the
        model's ``VecNormalize`` env if it has one, else with those saved in the model, else unchanged."""
        venv = self.get_vec_normalize_env()
        if venv is not None and venv.norm_obs:
            return venv.normalize_obs(np.asarray(observation)).astype(np.float32)
        if self.obs_normalization is not None:
            return self.obs_normalization.normalize(np.asarray(observation))
        return observation

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):  # type: ignore[override]
        """Actions for **raw** observations (see the module docstring)."""
        if not self._input_normalized:
            observation = self.normalize_observation(observation)
        return super().predict(observation, state, episode_start, deterministic)

    def _sample_action(self, *args, **kwargs):  # off-policy exploration: predicts on the normalised _last_obs
        self._input_normalized = True
        try:
            return super()._sample_action(*args, **kwargs)
        finally:
            self._input_normalized = False

    def report_evaluation(self, mean_return: float) -> None:
        """Record the latest evaluation mean return (NoisyTD3's noise reduction is driven by it)."""
        self.latest_eval_return = float(mean_return)

    @property
    def actor_network(self) -> ActorNetwork:
        """The :class:`ActorNetwork` inside the policy (PPO keeps it in ``mlp_extractor``)."""
        policy = self.policy
        return policy.mlp_extractor.network if hasattr(policy, "mlp_extractor") else policy.actor.network

    @property
    def actor_config(self) -> dict:
        """The actor network's configuration (an :class:`~agents.actors.ActorConfig` as a dict)."""
        return self.policy.actor_config

    def restore_normalization(self, env: VecNormalize) -> None:
        """Load the statistics saved with this model into ``env`` (e.g. when resuming training)."""
        if self.obs_normalization is not None:
            self.obs_normalization.apply_to(env)


class TD3(SpikingAlgorithmMixin, SB3TD3):
    """SB3 TD3 with a separate actor learning rate, e.g. ``TD3(ILCSANPolicy, env, actor_learning_rate=1e-4)``."""

    policy_aliases = {**SB3TD3.policy_aliases, **td3.POLICY_ALIASES}


class DDPG(SpikingAlgorithmMixin, SB3DDPG):
    """SB3 DDPG (TD3 with one critic, no delay, no target smoothing) with a separate actor learning rate."""

    policy_aliases = {**SB3DDPG.policy_aliases, **td3.POLICY_ALIASES}


class SAC(SpikingAlgorithmMixin, SB3SAC):
    """SB3 SAC whose actor mean is the actor network; spiking parts follow ``actor_learning_rate``."""

    policy_aliases = {**SB3SAC.policy_aliases, **sac.POLICY_ALIASES}


class PPO(SpikingAlgorithmMixin, SB3PPO):
    """SB3 PPO whose Gaussian mean is ``tanh(actor network)``; actor and log-std follow ``actor_learning_rate``."""

    policy_aliases = {**SB3PPO.policy_aliases, **ppo.POLICY_ALIASES}


ALGORITHMS = {"td3": TD3, "ddpg": DDPG, "sac": SAC, "ppo": PPO}
# policy class taking ``actor_config`` for each algorithm
POLICIES = {
    "td3": td3.NetworkTD3Policy,
    "ddpg": td3.NetworkTD3Policy,
    "sac": sac.NetworkSACPolicy,
    "ppo": ppo.NetworkPPOPolicy,
}
