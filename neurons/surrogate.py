"""Spike function: Heaviside forward, rectangular surrogate gradient backward.

The surrogate replaces the Dirac derivative of the Heaviside step by a box of
half-width ``width`` around the threshold and unit area (height ``1 / (2 width)``).
With the default ``width = 0.5`` this is PopSAN's surrogate (height 1, window
|v - V_th| < 0.5) and SpikingJelly's ``surrogate.Rect(alpha=1)``.
"""

from __future__ import annotations

import torch

DEFAULT_SURROGATE_WIDTH = 0.5


def rectangular_surrogate(distance: torch.Tensor, width: float) -> torch.Tensor:
    """Surrogate derivative ``dS/dv`` evaluated at ``distance = v - V_th``.

    Returns ``1 / (2 width)`` where ``|distance| < width`` and 0 elsewhere, same shape and dtype as ``distance``.
    """
    return (distance.abs() < width).to(distance.dtype) * (0.5 / width)


class SpikeFunction(torch.autograd.Function):
    """``S = H(v - V_th)`` with ``H(x) = 1 if x > 0`` and the rectangular surrogate gradient."""

    @staticmethod
    def forward(ctx, membrane: torch.Tensor, threshold: float, width: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(membrane)
        ctx.threshold = threshold
        ctx.width = width
        return (membrane > threshold).to(membrane.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        (membrane,) = ctx.saved_tensors
        return grad_spikes * rectangular_surrogate(membrane - ctx.threshold, ctx.width), None, None


def spike(membrane: torch.Tensor, threshold: float = 0.5, width: float = DEFAULT_SURROGATE_WIDTH) -> torch.Tensor:
    """Emit spikes (0/1 floats, same shape as ``membrane``) where ``membrane > threshold``.

    Gradients use the rectangular surrogate of half-width ``width`` (must be > 0).
    """
    if width <= 0:
        raise ValueError(f"surrogate width must be > 0, got {width}")
    return SpikeFunction.apply(membrane, threshold, width)
