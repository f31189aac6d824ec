"""TD3 / DDPG policies whose deterministic actor is any :class:`ActorNetwork`: ``a = tanh(network(obs))``."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from agents.actors import ActorConfig, ActorNetwork, build_actor
from agents.sb3.common import ActorConfigMixin, actor_optimizer


class NetworkTD3Actor(BasePolicy):
    """TD3 actor: features (identity for vector observations) -> actor network -> tanh, in [-1, 1]."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: nn.Module,
        features_dim: int,
        actor_config: dict[str, Any],
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.features_dim = features_dim
        self.actor_config = actor_config
        self.network: ActorNetwork = build_actor(
            features_dim, get_action_dim(action_space), ActorConfig(**actor_config)
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            features_dim=self.features_dim, features_extractor=self.features_extractor, actor_config=self.actor_config
        )
        return data

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Actions in [-1, 1]; ``noise`` (``[T, B, L]``) drives a noisy actor (NoisySAN), None = noise-free."""
        features = self.extract_features(obs, self.features_extractor)
        return torch.tanh(self.network(features) if noise is None else self.network(features, noise=noise))

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self(observation)


class NetworkTD3Policy(ActorConfigMixin, TD3Policy):
    """TD3/DDPG policy with an actor network chosen by ``actor_config`` (``name``: mlp, popsan, ilcsan)
    and SB3's twin MLP critics (``net_arch``, default ``[256, 256]``)."""

    def make_actor(self, features_extractor: nn.Module | None = None) -> NetworkTD3Actor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return NetworkTD3Actor(
            kwargs["observation_space"],
            kwargs["action_space"],
            kwargs["features_extractor"],
            kwargs["features_dim"],
            self.actor_config,
            kwargs["normalize_images"],
        ).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.actor.optimizer = actor_optimizer(self, self.actor.parameters(), (), lr_schedule)


class PopSANPolicy(NetworkTD3Policy):
    """TD3/DDPG with the PopSAN actor."""

    default_actor = "popsan"


class ILCSANPolicy(NetworkTD3Policy):
    """TD3/DDPG with the ILC-SAN actor."""

    default_actor = "ilcsan"


class NoisySANPolicy(NetworkTD3Policy):
    """TD3 with the NoisySAN actor (train it with :class:`agents.sb3.noisy_td3.NoisyTD3`)."""

    default_actor = "noisysan"


POLICY_ALIASES = {
    "NetworkPolicy": NetworkTD3Policy,
    "PopSANPolicy": PopSANPolicy,
    "ILCSANPolicy": ILCSANPolicy,
    "NoisySANPolicy": NoisySANPolicy,
}
