"""Noisy neurons of NoisySAN (docs/methods.md): noise in charging, in transmission, and in the readout.

For a CUBA-LIF layer of ``n`` neurons with charging noise ``e_v`` and transmission noise ``e_s``
(unit-variance sequences, ``[T, B, n]``) and the fixed scale ``sigma = sigma_init / sqrt(n)``::

    c_t = a_c c_{t-1} + (I_t + sigma e_v_t) + R s^_{t-1}     # charging noise; recurrence sees noisy spikes
    h_t = a_v v_{t-1} + c_t ;  s_t = H(h_t - V_th) ;  v_t = h_t (1 - s_t)     # reset on the clean spike
    s^_t = s_t + sigma e_s_t                                  # transmission noise: what the next layer receives

Both noise terms enter linearly, so they are folded into the input current of the ordinary scan
(:func:`neurons.lif.current_lif_scan`): ``R s^_{t-1} = R s_{t-1} + sigma R e_s_{t-1}``.

The non-spiking readout adds ``sigma_a e_a_t`` to its input current, with a *learnable* per-action scale
``sigma_a`` (initialised to ``sigma_init / sqrt(M)``); it is the scale NoisySAN's noise-reduction term acts on.

Noise is on exactly when a noise tensor is passed to ``forward``: nothing depends on ``module.training``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurons.lif import CurrentLIF, LIFParameters
from neurons.readout import NonSpikingReadout

DEFAULT_NOISE_SCALE = 0.5  # sigma_init of NoisySAN


class NoisyCurrentLIF(CurrentLIF):
    """:class:`CurrentLIF` of ``size`` neurons with charging and transmission noise of fixed scale
    ``noise_scale / sqrt(size)``. ``forward(current, blocks, noise, bias)`` with ``noise = (e_v, e_s)``, each
    ``[T, B, size]``, or ``None`` for the noise-free neuron; ``bias [size]`` is fused into the scan as in
    :class:`CurrentLIF` (with all-zero noise the output equals the noise-free neuron's, bit for bit)."""

    def __init__(
        self, size: int, noise_scale: float = DEFAULT_NOISE_SCALE, params: LIFParameters | None = None
    ) -> None:
        super().__init__(params)
        if size < 1 or noise_scale < 0:
            raise ValueError(f"size must be >= 1 and noise_scale >= 0, got {size} and {noise_scale}")
        self.size = size
        self.sigma = noise_scale / math.sqrt(size)

    def forward(  # type: ignore[override]
        self,
        current: torch.Tensor,
        blocks: torch.Tensor | None = None,
        noise: tuple[torch.Tensor, torch.Tensor] | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Transmitted spikes ``[T, B, size]`` (binary when ``noise`` is None)."""
        if noise is None:
            return super().forward(current, blocks, bias)
        charge, transmit = noise
        if charge.shape != current.shape or transmit.shape != current.shape:
            raise ValueError(
                f"noise must match the current {tuple(current.shape)}, got {tuple(charge.shape)} and "
                f"{tuple(transmit.shape)}"
            )
        noisy_current = current + self.sigma * charge
        if blocks is not None:  # R s^_{t-1} = R s_{t-1} + sigma R e_s_{t-1}
            steps, batch, features = current.shape
            previous = transmit[:-1].reshape(steps - 1, batch, blocks.shape[0], -1)
            feedback = torch.einsum("tbgj,gij->tbgi", previous, blocks).reshape(steps - 1, batch, features)
            noisy_current = torch.cat([noisy_current[:1], noisy_current[1:] + self.sigma * feedback])
        return super().forward(noisy_current, blocks, bias) + self.sigma * transmit

    def extra_repr(self) -> str:
        return f"size={self.size}, sigma={self.sigma:.4g}, " + super().extra_repr()


class NoisyNonSpikingReadout(NonSpikingReadout):
    """:class:`NonSpikingReadout` of ``size`` neurons with learnable noise scales ``sigma`` (``[size]``).
    ``forward(current, noise)`` with ``noise`` ``[T, B, size]`` or ``None``."""

    def __init__(self, size: int, noise_scale: float = DEFAULT_NOISE_SCALE, decay: float = 1.0, mode: str = "last"):
        super().__init__(decay, mode)
        self.sigma = nn.Parameter(torch.full((size,), noise_scale / math.sqrt(size)))

    def forward(self, current: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if noise is None:
            return super().forward(current)
        if noise.shape != current.shape:
            raise ValueError(f"readout noise must match the current {tuple(current.shape)}, got {tuple(noise.shape)}")
        return super().forward(current + self.sigma * noise)
