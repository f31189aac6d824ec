"""Dense ReLU networks: the :func:`mlp` builder every dense network of the project uses, and the baseline actor."""

from __future__ import annotations

import torch
from torch import nn

from agents.activity import ActivityReport, mlp_macs
from agents.actors.base import ActorNetwork


def mlp(sizes: list[int]) -> nn.Sequential:
    """``Linear, ReLU`` between consecutive ``sizes`` (``[in, *hidden, out]``), no activation after the last
    ``Linear``: input ``[B, sizes[0]]`` -> output ``[B, sizes[-1]]``."""
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp needs at least an input and an output size, all >= 1; got {sizes}")
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPActor(ActorNetwork):
    """``obs -> [Linear, ReLU] x len(hidden_sizes) -> Linear -> pre-activation`` (the deep actor of TD3)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int]) -> None:
        super().__init__(obs_dim, act_dim)
        self.sizes = [obs_dim, *hidden_sizes, act_dim]
        self.net = mlp(self.sizes)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.check_obs(obs)
        return self.net(obs)

    def activity(self) -> ActivityReport:
        return ActivityReport(macs=float(mlp_macs(self.sizes)))
