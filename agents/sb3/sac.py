"""SAC policies whose Gaussian mean is an :class:`ActorNetwork` (PopSAN-SAC, docs/methods.md, Actions per algorithm).

``mean = network(obs)`` (no tanh: SB3's squashed Gaussian applies it with the log-prob correction);
``log_std = clamp(MLP(obs), -20, 2)`` from a separate ReLU MLP (``net_arch``, default 256-256).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy

from agents.actors import ActorConfig, ActorNetwork, build_actor
from agents.sb3.common import ActorConfigMixin, actor_optimizer


class NetworkSACActor(Actor):
    """SAC actor: the actor network gives the mean; SB3's ``latent_pi`` + ``log_std`` MLP gives log σ."""

    def __init__(self, *args: Any, actor_config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.use_sde:
            raise ValueError("gSDE is not supported with actor networks (use_sde=False)")
        self.actor_config = actor_config
        del self.mu  # the mean comes from the actor network
        self.network: ActorNetwork = build_actor(
            self.features_dim, get_action_dim(self.action_space), ActorConfig(**actor_config)
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(actor_config=self.actor_config)
        return data

    def get_action_dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        features = self.extract_features(obs, self.features_extractor)
        log_std = torch.clamp(self.log_std(self.latent_pi(features)), LOG_STD_MIN, LOG_STD_MAX)
        return self.network(features), log_std, {}


class NetworkSACPolicy(ActorConfigMixin, SACPolicy):
    """SAC policy with an actor network chosen by ``actor_config`` and twin MLP critics."""

    def make_actor(self, features_extractor=None) -> NetworkSACActor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return NetworkSACActor(**kwargs, actor_config=self.actor_config).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        log_std_head = [*self.actor.latent_pi.parameters(), *self.actor.log_std.parameters()]
        self.actor.optimizer = actor_optimizer(self, self.actor.network.parameters(), log_std_head, lr_schedule)


class PopSANPolicy(NetworkSACPolicy):
    default_actor = "popsan"


class ILCSANPolicy(NetworkSACPolicy):
    default_actor = "ilcsan"


POLICY_ALIASES = {"NetworkPolicy": NetworkSACPolicy, "PopSANPolicy": PopSANPolicy, "ILCSANPolicy": ILCSANPolicy}
