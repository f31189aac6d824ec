"""Dense ReLU baseline actor."""

from __future__ import annotations

import torch
from torch import nn

from agents.activity import ActivityReport, mlp_macs
from agents.actors.base import ActorNetwork


class MLPActor(ActorNetwork):
    """``obs -> [Linear, ReLU] x len(hidden_sizes) -> Linear -> pre-activation`` (the deep actor of TD3)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int]) -> None:
        super().__init__(obs_dim, act_dim)
        self.sizes = [obs_dim, *hidden_sizes, act_dim]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(self.sizes[:-2], self.sizes[1:-1]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(self.sizes[-2], act_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.check_obs(obs)
        return self.net(obs)

    def activity(self) -> ActivityReport:
        return ActivityReport(macs=float(mlp_macs(self.sizes)))
