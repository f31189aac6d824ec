"""Intra-layer connections of ILC-SAN's output populations (docs/methods.md, ILC-SAN).

Each action dimension ``g`` owns a population of ``P`` neurons. A learnable ``P x P`` matrix ``R_g`` and a
bias ``b_g`` feed the population's previous-step spikes back into its own input current::

    I_t[g] += R_g s_{t-1}[g] + b_g          (s_{-1} = 0, so only b_g enters at t = 0)

Diagonal entries are self ("time-domain") connections, off-diagonal entries lateral ("space-domain")
connections; populations of different action dimensions are never connected. Modes are fixed mask buffers,
so masked weights stay exactly zero while the others train:

=========  ===========  =================  ====
mode       diagonal     off-diagonal       bias
=========  ===========  =================  ====
full       yes          yes                yes
self       yes          no                 no
lateral    no           yes                no
bias       no           no                 yes
none       no           no                 no
=========  ===========  =================  ====
"""

from __future__ import annotations

import math

import torch
from torch import nn

CONNECTION_MODES = ("full", "self", "lateral", "bias", "none")


class IntraLayerConnections(nn.Module):
    """Recurrent weights within each of ``groups`` populations of ``pop_size`` neurons.

    :meth:`blocks` (``[G, P, P]``) is what :class:`neurons.lif.CurrentLIF` consumes; :meth:`masked_bias` is
    added to the input current every step.
    """

    def __init__(self, groups: int, pop_size: int, mode: str = "full") -> None:
        super().__init__()
        if mode not in CONNECTION_MODES:
            raise ValueError(f"unknown intra-layer connection mode {mode!r}; valid: {', '.join(CONNECTION_MODES)}")
        self.groups = groups
        self.pop_size = pop_size
        self.mode = mode
        eye = torch.eye(pop_size)
        weight_mask = {"full": torch.ones(pop_size, pop_size), "self": eye, "lateral": 1 - eye}.get(
            mode, torch.zeros(pop_size, pop_size)
        )
        bias_on = 1.0 if mode in ("full", "bias") else 0.0
        self.register_buffer("weight_mask", weight_mask.expand(groups, -1, -1).clone())
        self.register_buffer("bias_mask", torch.full((groups * pop_size,), bias_on))
        bound = 1.0 / math.sqrt(pop_size)  # Conv1d default init, fan_in = P
        self.weight = nn.Parameter(torch.empty(groups, pop_size, pop_size).uniform_(-bound, bound) * self.weight_mask)
        self.bias = nn.Parameter(torch.empty(groups * pop_size).uniform_(-bound, bound) * self.bias_mask)

    @property
    def has_weights(self) -> bool:
        return self.mode in ("full", "self", "lateral")

    @property
    def has_bias(self) -> bool:
        return self.mode in ("full", "bias")

    def blocks(self) -> torch.Tensor:
        """Masked recurrent weights ``[G, P, P]``; ``blocks[g, i, j]`` connects neuron ``j`` to ``i`` of group ``g``."""
        return self.weight * self.weight_mask

    def masked_bias(self) -> torch.Tensor:
        """Per-neuron bias ``[G * P]`` (zeros unless the mode has a bias)."""
        return self.bias * self.bias_mask

    def fan_out(self) -> int:
        """Recurrent synapses leaving one output neuron (for synaptic-operation counts)."""
        return int(self.weight_mask[0].sum(0).max().item()) if self.has_weights else 0

    def extra_repr(self) -> str:
        return f"groups={self.groups}, pop_size={self.pop_size}, mode={self.mode!r}"
