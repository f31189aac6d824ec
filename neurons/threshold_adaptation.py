"""Input-weighted threshold adaptation (IWTA): presynaptic spikes move the postsynaptic firing threshold.

Per individual ``p``, presynaptic neuron ``j`` and postsynaptic neuron ``i`` (one tick)::

    a_j(t)  = τ_th,j a_j(t-1) + s_j(t)
    ϑ_i(t)  = ϑ_base,i + Σ_j W_th,ij a_j(t)

With a slow trace (τ_th near 1) the threshold integrates the input, giving the integral pathway of the I controller.
"""

from __future__ import annotations

import torch


def adapt_threshold(
    trace: torch.Tensor,
    presynaptic_spikes: torch.Tensor,
    trace_decay: torch.Tensor,
    weights: torch.Tensor,
    base_threshold: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One tick of IWTA.

    Args:
        trace: ``a(t-1)``, ``[P, M]``.
        presynaptic_spikes: ``s(t)``, ``[P, M]``.
        trace_decay: ``τ_th``, ``[P, M]``.
        weights: ``W_th``, ``[P, N, M]``.
        base_threshold: ``ϑ_base``, ``[P, N]``.

    Returns:
        ``(a(t) [P, M], ϑ(t) [P, N])``.
    """
    trace = torch.addcmul(presynaptic_spikes, trace, trace_decay)
    threshold = base_threshold + torch.bmm(weights, trace.unsqueeze(-1)).squeeze(-1)
    return trace, threshold
