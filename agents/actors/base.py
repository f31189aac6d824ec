"""The interface every actor network implements."""

from __future__ import annotations

import abc

import torch
from torch import nn

from agents.activity import ActivityReport


class ActorNetwork(nn.Module, abc.ABC):
    """Maps observations ``[B, obs_dim]`` to unbounded action pre-activations ``[B, act_dim]``.

    Policies add the squashing their algorithm needs (``tanh`` for TD3/DDPG/PPO means; SAC squashes inside
    its distribution). After any forward pass :meth:`activity` reports firing rates, SOPs and MACs per action.
    """

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim} and {act_dim}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim

    def check_obs(self, obs: torch.Tensor) -> None:
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"{type(self).__name__} expects observations [B, {self.obs_dim}], got {tuple(obs.shape)}")

    @abc.abstractmethod
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Action pre-activations ``[B, act_dim]`` for observations ``[B, obs_dim]``."""

    @abc.abstractmethod
    def activity(self) -> ActivityReport:
        """Activity of the most recent forward pass, per action (batch mean)."""
