"""Networks of the learning signal controllers: Q-networks (MLP or spiking) and MTLight's multi-task encoder."""

from __future__ import annotations

import torch
from torch import nn

from agents.actors.mlp import mlp
from neurons.lif import CurrentLIF
from neurons.readout import NonSpikingReadout


class SpikingQNetwork(nn.Module):
    """Q-network with spiking hidden layers: ``x [B, in] -> Q [B, actions]``.

    The input is presented as a constant current for ``steps`` SNN steps (direct encoding); every hidden layer is a
    linear map followed by CUBA-LIF neurons (:class:`neurons.lif.CurrentLIF`, surrogate gradients); Q-values are the
    final membrane voltage of non-spiking integrating readout neurons (:class:`neurons.readout.NonSpikingReadout`),
    divided by ``steps``.
    """

    def __init__(self, in_features: int, hidden_sizes: list[int], actions: int, steps: int = 4) -> None:
        super().__init__()
        sizes = [in_features, *hidden_sizes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.neurons = nn.ModuleList(CurrentLIF() for _ in hidden_sizes)
        self.output = nn.Linear(sizes[-1], actions)
        self.readout = NonSpikingReadout(decay=1.0, mode="last")
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = x.unsqueeze(0).expand(self.steps, *x.shape)
        for layer, neurons in zip(self.layers, self.neurons):
            spikes = neurons(layer(spikes).contiguous())
        return self.readout(self.output(spikes)) / self.steps


def q_network(kind: str, in_features: int, hidden_sizes: list[int], actions: int, steps: int) -> nn.Module:
    if kind == "spiking":
        return SpikingQNetwork(in_features, hidden_sizes, actions, steps)
    return mlp([in_features, *hidden_sizes, actions])


class MultiTaskEncoder(nn.Module):
    """MTLight's latent state: history ``[B, K, D]`` -> ``(latent [B, S + m * T], {task: prediction [B, dim]})``.

    A shared trunk (MLP over the flattened history) gives the task-shared latent ``z_sh`` (size ``S``); per task a
    small layer gives the task-specific latent ``z_k = ReLU(W_k z_sh)`` (size ``T``) and a linear head predicts the
    task target from ``z_k``. The latent is ``concat(z_sh, z_1, ..., z_m)``.
    """

    def __init__(
        self, obs_dim: int, history: int, task_dims: dict[str, int], shared: int = 32, task: int = 8, hidden: int = 128
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(obs_dim * history, hidden), nn.ReLU(), nn.Linear(hidden, shared), nn.ReLU()
        )
        self.task_latents = nn.ModuleDict(
            {name: nn.Sequential(nn.Linear(shared, task), nn.ReLU()) for name in task_dims}
        )
        self.heads = nn.ModuleDict({name: nn.Linear(task, dim) for name, dim in task_dims.items()})
        self.latent_size = shared + task * len(task_dims)

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        shared = self.trunk(history.flatten(1))
        latents = {name: layer(shared) for name, layer in self.task_latents.items()}
        predictions = {name: self.heads[name](z) for name, z in latents.items()}
        return torch.cat([shared, *latents.values()], dim=1), predictions


class TrafficQModel(nn.Module):
    """Q-values from an observation history ``[B, K, D]`` (the newest observation is ``history[:, -1]``).

    Without an encoder (DQN) the Q-network sees the newest observation; with one (MTLight) it sees
    ``concat(o_t, latent)``; ``detach_latent`` stops the TD gradient at the latent.
    """

    def __init__(self, q_net: nn.Module, encoder: MultiTaskEncoder | None = None, detach_latent: bool = False) -> None:
        super().__init__()
        self.q_net = q_net
        self.encoder = encoder
        self.detach_latent = detach_latent

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        obs = history[:, -1]
        if self.encoder is None:
            return self.q_net(obs), {}
        latent, predictions = self.encoder(history)
        if self.detach_latent:
            latent = latent.detach()
        return self.q_net(torch.cat([obs, latent], dim=1)), predictions
