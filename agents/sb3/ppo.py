"""PPO policies whose Gaussian mean is ``tanh(ActorNetwork(obs))`` with a state-independent log σ
(PopSAN-PPO, docs/methods.md, Actions per algorithm) and an MLP value function (``net_arch``, default 256-256 ReLU)."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from agents.actors import ActorConfig, ActorNetwork, build_actor
from agents.sb3.common import ActorConfigMixin, actor_optimizer


class ActorValueNetworks(nn.Module):
    """SB3 ``mlp_extractor`` replacement: actor latent = action mean ``tanh(network)``, critic latent = MLP."""

    def __init__(self, features_dim: int, act_dim: int, actor_config: dict[str, Any], value_hidden: list[int]) -> None:
        super().__init__()
        self.network: ActorNetwork = build_actor(features_dim, act_dim, ActorConfig(**actor_config))
        self.value = nn.Sequential(*create_mlp(features_dim, -1, value_hidden, nn.ReLU))
        self.latent_dim_pi = act_dim
        self.latent_dim_vf = value_hidden[-1]

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.network(features))

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value(features)


class NetworkPPOPolicy(ActorConfigMixin, ActorCriticPolicy):
    """PPO policy with an actor network chosen by ``actor_config``.

    ``ortho_init`` is off (it would re-initialise the actor network's layers); ``log_std_init`` defaults
    to -0.5 as in PopSAN-PPO.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        actor_config: dict[str, Any] | None = None,
        log_std_init: float = -0.5,
        **kwargs: Any,
    ) -> None:
        kwargs["ortho_init"] = False
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch, actor_config, log_std_init=log_std_init, **kwargs
        )

    def _build_mlp_extractor(self) -> None:
        hidden = self.net_arch if isinstance(self.net_arch, list) else self.net_arch.get("vf", [256, 256])
        self.mlp_extractor = ActorValueNetworks(
            self.features_dim, get_action_dim(self.action_space), self.actor_config, list(hidden)
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()  # the actor latent already is the mean
        actor_params = [*self.mlp_extractor.network.parameters(), self.log_std]
        actor_ids = {id(p) for p in actor_params}
        others = [p for p in self.parameters() if id(p) not in actor_ids]
        self.optimizer = actor_optimizer(self, actor_params, others, lr_schedule)


class PopSANPolicy(NetworkPPOPolicy):
    default_actor = "popsan"


class ILCSANPolicy(NetworkPPOPolicy):
    default_actor = "ilcsan"


POLICY_ALIASES = {"NetworkPolicy": NetworkPPOPolicy, "PopSANPolicy": PopSANPolicy, "ILCSANPolicy": ILCSANPolicy}
