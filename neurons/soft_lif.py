"""Soft-reset current-based LIF with per-neuron, per-individual parameters (the evolved blimp SNN, one tick).

For neuron ``i`` of individual ``p`` (all tensors ``[P, N]``; decays are retention factors in [0, 1])::

    c_t = τ_syn c_{t-1} + I_t                  (τ_syn = 0: the input is injected directly as current)
    v_t = τ_mem v_{t-1} + c_t - s_{t-1} ϑ_{t-1}   soft reset: subtract the threshold the neuron fired at
    s_t = H(v_t - ϑ_t)

Unlike :class:`neurons.lif.CurrentLIF` (hard reset, shared scalar constants, gradient training) every neuron of
every individual has its own ``τ_syn``, ``τ_mem`` and ``ϑ``, and the threshold may change per tick (IWTA).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SoftLIFState:
    """Explicit state of a population of soft-reset LIF layers, each ``[P, N]``."""

    current: torch.Tensor
    voltage: torch.Tensor
    spikes: torch.Tensor
    reset: torch.Tensor  # s_{t-1} ϑ_{t-1}: what the next step subtracts

    @classmethod
    def zeros(cls, population: int, neurons: int, dtype: torch.dtype = torch.float64) -> SoftLIFState:
        def z() -> torch.Tensor:
            return torch.zeros(population, neurons, dtype=dtype)

        return cls(z(), z(), z(), z())


def soft_lif_step(
    state: SoftLIFState,
    input_current: torch.Tensor,
    mem_decay: torch.Tensor,
    threshold: torch.Tensor,
    syn_decay: torch.Tensor | None = None,
) -> torch.Tensor:
    """Advance ``state`` in place by one tick and return the new spikes ``[P, N]`` (0/1 floats).

    Args:
        state: layer state, updated in place.
        input_current: ``I_t``, ``[P, N]``.
        mem_decay: ``τ_mem``, ``[P, N]``.
        threshold: ``ϑ_t``, ``[P, N]``.
        syn_decay: ``τ_syn``, ``[P, N]``; ``None`` means 0 (direct current injection).
    """
    if syn_decay is None:
        state.current = input_current
    else:
        state.current = torch.addcmul(input_current, state.current, syn_decay)
    state.voltage = torch.addcmul(state.current - state.reset, state.voltage, mem_decay)
    state.spikes = (state.voltage > threshold).to(state.voltage.dtype)
    state.reset = state.spikes * threshold
    return state.spikes
