"""Paired-sign current-injection encoding of a scalar signal (the blimp SNN's input layer).

Neurons come in pairs ``(2k, 2k+1)`` sharing a bias ``b_k`` and a weight magnitude ``w_k`` with opposite signs::

    I_{2k}   = +w_k x + b_k
    I_{2k+1} = -w_k x + b_k

so positive and negative inputs drive mirrored spike patterns, and the bias keeps neurons active near ``x = 0``.
"""

from __future__ import annotations

import torch


def paired_weights(magnitude: torch.Tensor) -> torch.Tensor:
    """``[P, K]`` pair weights -> ``[P, 2K]`` signed weights ``(+w_0, -w_0, +w_1, -w_1, ...)``."""
    return torch.stack((magnitude, -magnitude), dim=-1).flatten(-2)


def paired_encoding_current(signal: torch.Tensor, magnitude: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Input current of the paired encoding layer for a whole sequence.

    Args:
        signal: ``[T]`` (shared by all individuals) or ``[T, P]``.
        magnitude: pair weights ``w``, ``[P, K]``.
        bias: pair biases ``b``, ``[P, K]``.

    Returns:
        current ``[T, P, 2K]``.
    """
    weights = paired_weights(magnitude)
    biases = torch.repeat_interleave(bias, 2, dim=-1)
    if signal.dim() == 1:
        signal = signal[:, None]
    return signal[:, :, None] * weights + biases
