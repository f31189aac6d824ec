"""Grouped synapses from an output population to one value per group (per action dimension)."""

from __future__ import annotations

import math

import torch
from torch import nn


class GroupedLinear(nn.Module):
    """``y[..., g] = sum_k w[g, k] x[..., g * P + k] + b[g]``: ``G`` independent ``P -> 1`` readouts.

    This is PopSAN's decoder (a grouped ``Conv1d``); each action dimension sees only its own population.
    Input ``[..., G * P]`` -> output ``[..., G]``.
    """

    def __init__(self, groups: int, group_size: int) -> None:
        super().__init__()
        self.groups = groups
        self.group_size = group_size
        bound = 1.0 / math.sqrt(group_size)  # PyTorch's Conv1d default init for fan_in = P
        self.weight = nn.Parameter(torch.empty(groups, group_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(*x.shape[:-1], self.groups, self.group_size)
        return (grouped * self.weight).sum(-1) + self.bias

    def extra_repr(self) -> str:
        return f"groups={self.groups}, group_size={self.group_size}"
