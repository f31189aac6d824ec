"""Population encoder: Gaussian receptive fields turned into spike trains (PopSAN; docs/methods.md, Population encoder).

For observation dimension ``i`` and population neuron ``k`` (learnable ``mu[i, k]``, ``sigma[i, k]``)::

    A[b, i, k] = exp(-0.5 * (obs[b, i] - mu[i, k])^2 / sigma[i, k]^2)      in (0, 1]

Spike generation over ``T`` steps:

* ``deterministic`` ("regular"): an integrate-and-fire neuron with soft reset, input ``A`` each step and
  threshold 0.999. Its spike count after ``t + 1`` steps is ``ceil((t + 1) A / 0.999) - 1``, capped at one
  spike per step, so the whole train is computed in one vectorised op.
* ``bernoulli``: ``s_t ~ Bernoulli(A)`` independently per step.

Gradients are straight-through: ``d s_t / d A = 1`` for every step, so ``mu`` and ``sigma`` train with the actor.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from neurons import event_kernels

ENCODER_THRESHOLD = 0.999
ENCODER_THRESHOLD_F32 = np.float32(ENCODER_THRESHOLD)
SPIKE_MODES = ("deterministic", "bernoulli")


class PopulationEncoder(nn.Module):
    """Encode observations ``[B, N]`` into spikes ``[T, B, N * P]`` (neuron ``i * P + k`` codes dim ``i``).

    Args:
        obs_dim: ``N``, observation size.
        pop_size: ``P``, neurons per observation dimension.
        mean_range: receptive-field centres are initialised evenly on this interval (default ``(-3, 3)``,
            matching observations normalised and clipped to ±3).
        std: initial receptive-field width (default ``sqrt(0.15)``).
        spike_mode: ``"deterministic"`` (regular spikes) or ``"bernoulli"``.
    """

    def __init__(
        self,
        obs_dim: int,
        pop_size: int = 10,
        mean_range: tuple[float, float] = (-3.0, 3.0),
        std: float = math.sqrt(0.15),
        spike_mode: str = "deterministic",
    ) -> None:
        super().__init__()
        if spike_mode not in SPIKE_MODES:
            raise ValueError(f"unknown spike_mode {spike_mode!r}; valid: {', '.join(SPIKE_MODES)}")
        if obs_dim < 1 or pop_size < 1:
            raise ValueError(f"obs_dim and pop_size must be >= 1, got {obs_dim} and {pop_size}")
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.obs_dim = obs_dim
        self.pop_size = pop_size
        self.spike_mode = spike_mode
        low, high = mean_range
        centres = torch.linspace(low, high, pop_size) if pop_size > 1 else torch.tensor([(low + high) / 2])
        self.mean = nn.Parameter(centres.repeat(obs_dim, 1))  # [N, P]
        self.std = nn.Parameter(torch.full((obs_dim, pop_size), float(std)))  # [N, P]

    @property
    def num_neurons(self) -> int:
        return self.obs_dim * self.pop_size

    def receptive_field(self, obs: torch.Tensor) -> torch.Tensor:
        """Activations ``A`` in (0, 1], shape ``[B, N * P]``, for observations ``[B, N]``."""
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"observations must have shape [B, {self.obs_dim}], got {tuple(obs.shape)}")
        z = (obs.unsqueeze(-1) - self.mean) / self.std
        return torch.exp(-0.5 * z * z).reshape(obs.shape[0], -1)

    def encode(self, obs: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(spikes [steps, B, N * P], activation [B, N * P])``: the spike trains (0/1 floats, no gradient)
        and their straight-through source ``A`` (for :func:`neurons.synapses.spike_linear`)."""
        activation = self.receptive_field(obs)
        if self.spike_mode == "deterministic" and activation.device.type == "cpu" and activation.dtype == torch.float32:
            spikes = torch.empty((steps, *activation.shape))
            event_kernels.regular_spikes(activation.detach().numpy(), ENCODER_THRESHOLD_F32, spikes.numpy())
            return spikes, activation
        with torch.no_grad():
            if self.spike_mode == "deterministic":
                counts = torch.arange(steps + 1, dtype=activation.dtype, device=activation.device)
                counts = torch.ceil(counts.view(-1, 1, 1) * (activation / ENCODER_THRESHOLD)).sub_(1).clamp_(min=0)
                spikes = (counts[1:] - counts[:-1]).clamp_(max=1)  # one spike per step at most (A > 0.999)
            else:
                spikes = (torch.rand((steps, *activation.shape), device=activation.device) < activation).to(
                    activation.dtype
                )
        return spikes, activation

    def forward(self, obs: torch.Tensor, steps: int) -> torch.Tensor:
        """Spike trains ``[steps, B, N * P]`` (0/1 floats) with straight-through gradients to ``A``."""
        spikes, activation = self.encode(obs, steps)
        return spikes + (activation - activation.detach())  # value = spikes, d spikes_t / d A = 1
