"""NoisySAN (Chen et al., arXiv 2403.04162): ILC-SAN with time-correlated noise in its neurons (docs/methods.md).

Every spiking layer (hidden layers and output populations) gets charging and transmission noise of fixed
scale ``noise_scale / sqrt(width)``; the non-spiking readout gets noise of learnable scale ``sigma_a``
(``[M]``). The noise is an explicit argument: ``forward(obs)`` is the noise-free actor, identical to
:class:`ILCSAN` with the same weights (and eligible for the event-driven inference path);
``forward(obs, noise)`` with ``noise`` of shape ``[T, B, noise_width]`` is the exploring actor.

Noise channel layout (last axis of ``noise``): for each spiking layer in order, ``width`` charging channels
then ``width`` transmission channels; finally ``M`` readout channels. HalfCheetah (hidden 256-256,
``M * P_d = 60``): ``2 * (256 + 256 + 60) + 6 = 1150`` channels.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.actors.config import ActorConfig
from agents.actors.spiking import ILCSAN
from neurons.noisy import NoisyCurrentLIF, NoisyNonSpikingReadout


class NoisySAN(ILCSAN):
    """ILC-SAN with noisy CUBA-LIF layers and a noisy non-spiking readout."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        self.noisy_neurons = nn.ModuleList(
            NoisyCurrentLIF(width, config.noise_scale, self.neurons.params) for width in self.layer_widths[1:]
        )
        self.readout = NoisyNonSpikingReadout(act_dim, config.noise_scale, config.readout_decay, config.readout)

    @property
    def noise_widths(self) -> list[int]:
        """Channel count of each noise segment, in layout order (see module docstring)."""
        return [w for width in self.layer_widths[1:] for w in (width, width)] + [self.act_dim]

    @property
    def noise_width(self) -> int:
        """Noise channels per sample and SNN step (``L``)."""
        return sum(self.noise_widths)

    @property
    def readout_noise_scale(self) -> torch.Tensor:
        """The learnable readout noise scales ``sigma_a`` ``[M]``."""
        return self.readout.sigma

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Action pre-activations ``[B, M]``; noise-free when ``noise`` is None, else driven by ``noise``
        ``[T, B, noise_width]`` (unit-variance sequences, scaled inside the neurons)."""
        if noise is None:
            return super().forward(obs)
        self.check_obs(obs)
        expected = (self.timesteps, obs.shape[0], self.noise_width)
        if tuple(noise.shape) != expected:
            raise ValueError(f"NoisySAN noise must have shape [T, B, L] = {expected}, got {tuple(noise.shape)}")
        parts = torch.split(noise, self.noise_widths, dim=-1)
        per_layer = [(parts[2 * i], parts[2 * i + 1]) for i in range(len(self.layers))]
        spikes = self.output_spikes(obs, per_layer)
        return self.readout(self.readout_synapses(spikes), parts[-1])

    def fire(
        self, index: int, current: torch.Tensor, bias: torch.Tensor, blocks: torch.Tensor | None, noise: object
    ) -> torch.Tensor:
        if noise is None:  # the noise-free actor: exactly ILC-SAN's layer
            return super().fire(index, current, bias, blocks, None)
        return self.noisy_neurons[index](current, blocks, noise, bias)
