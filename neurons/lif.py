"""Current-based leaky integrate-and-fire neuron (CUBA-LIF), multi-step.

For every neuron, at SNN step ``t`` with input current ``I_t``::

    c_t = a_c * c_{t-1} + I_t + R s_{t-1}        # synaptic current (R: optional recurrent weights)
    h_t = a_v * v_{t-1} + c_t                     # membrane before the spike
    s_t = H(h_t - V_th)                           # Heaviside forward, rectangular surrogate backward
    v_t = h_t * (1 - s_t)                         # hard reset to 0 (the reset is not detached)

with ``c_{-1} = v_{-1} = s_{-1} = 0``: state never carries across calls. Defaults are PopSAN's:
``a_c = 0.5``, ``a_v = 0.75``, ``V_th = 0.5``, surrogate half-width 0.5.

Speed: the whole ``[T, B, F]`` scan is one autograd node whose backward is the hand-derived adjoint
recursion below. On CPU both directions run in compiled kernels (:mod:`neurons.lif_kernels`, one call per
layer); elsewhere the same equations run as tensor ops (:func:`scan_reference`). Matmuls for the
feed-forward input are done by the caller for all ``T`` steps at once.

Backward (adjoints ``g``; ``sg_t`` = surrogate at ``h_t - V_th``; ``dL/ds_t`` includes ``g_c_{t+1} R``)::

    g_h_t = sg_t * dL/ds_t + a_v * g_h_{t+1} * ((1 - s_t) - sg_t * h_t)
    g_c_t = g_h_t + a_c * g_c_{t+1}  = dL/dI_t ;   dL/dR = sum_t g_c_t^T s_{t-1}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurons import lif_kernels
from neurons.surrogate import DEFAULT_SURROGATE_WIDTH, rectangular_surrogate


@dataclass(frozen=True)
class LIFParameters:
    """Constants of a CUBA-LIF layer (decays are retention factors per SNN step): the one definition that the
    torch layer (:class:`CurrentLIF`), the compiled kernels (:meth:`kernel_constants`), the actor config and
    the integer export (which quantises these values) all read."""

    current_decay: float = 0.5
    voltage_decay: float = 0.75
    threshold: float = 0.5
    surrogate_width: float = DEFAULT_SURROGATE_WIDTH

    def __post_init__(self) -> None:
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.surrogate_width <= 0:
            raise ValueError(f"surrogate_width must be > 0, got {self.surrogate_width}")

    def kernel_constants(self, dtype: type[np.floating]) -> tuple[np.floating, np.floating, np.floating]:
        """``(current_decay, voltage_decay, threshold)`` as ``dtype`` scalars, the compiled kernels' arguments."""
        return dtype(self.current_decay), dtype(self.voltage_decay), dtype(self.threshold)


def scan_reference(
    current: torch.Tensor, params: LIFParameters, blocks: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward scan with plain tensor ops (any device, no gradient). Returns ``(spikes, membrane)``."""
    steps, batch, features = current.shape
    membrane = torch.empty_like(current)
    spikes = torch.empty_like(current)
    synapse = current[0].clone()
    after_reset = torch.empty_like(synapse)
    for t in range(steps):
        if t == 0:
            membrane[0].copy_(synapse)
        else:
            torch.add(current[t], synapse, alpha=params.current_decay, out=synapse)
            if blocks is not None:
                previous = spikes[t - 1].view(batch, blocks.shape[0], -1)
                synapse += torch.einsum("bgj,gij->bgi", previous, blocks).reshape(batch, features)
            torch.add(synapse, after_reset, alpha=params.voltage_decay, out=membrane[t])
        torch.gt(membrane[t], params.threshold, out=spikes[t])
        torch.addcmul(membrane[t], membrane[t], spikes[t], value=-1.0, out=after_reset)
    return spikes, membrane


def _backward_reference(
    grad_spikes: torch.Tensor,
    membrane: torch.Tensor,
    spikes: torch.Tensor,
    blocks: torch.Tensor | None,
    params: LIFParameters,
) -> torch.Tensor:
    """Adjoint recursion of the module docstring with plain tensor ops; returns ``dL/dI`` ``[T, B, F]``."""
    steps, batch, features = membrane.shape
    surrogate = rectangular_surrogate(membrane - params.threshold, params.surrogate_width)
    direct = surrogate * grad_spikes
    reset_gain = torch.addcmul(1.0 - spikes, surrogate, membrane, value=-1.0)
    grad_current = torch.empty_like(membrane)
    grad_h = direct[steps - 1].clone()
    grad_current[steps - 1].copy_(grad_h)
    for t in range(steps - 2, -1, -1):
        if blocks is not None:
            upstream = grad_current[t + 1].view(batch, blocks.shape[0], -1)
            direct[t].addcmul_(surrogate[t], torch.einsum("bgi,gij->bgj", upstream, blocks).reshape(batch, features))
        grad_h = torch.addcmul(direct[t], grad_h, reset_gain[t], value=params.voltage_decay)
        torch.add(grad_h, grad_current[t + 1], alpha=params.current_decay, out=grad_current[t])
    return grad_current


def _use_kernels(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def _optional_array(tensor: torch.Tensor | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``tensor`` as a NumPy array, or zeros of ``shape`` (an absent bias / no recurrent blocks)."""
    return _as_array(tensor) if tensor is not None else np.zeros(shape, dtype)


class _CurrentLIFScan(torch.autograd.Function):
    """Fused forward/backward of the CUBA-LIF scan over the leading time axis, input ``current + bias``."""

    @staticmethod
    def forward(ctx, current, bias, blocks, params: LIFParameters):  # type: ignore[override]
        ctx.arrays = None
        if _use_kernels(current):
            cur = _as_array(current)
            dtype = cur.dtype.type
            membrane_array = np.empty_like(cur)
            spikes_array = np.empty_like(cur)
            block_array = _optional_array(blocks, (0, 1, 1), cur.dtype)
            lif_kernels.lif_forward(
                cur,
                _optional_array(bias, cur.shape[-1:], cur.dtype),
                block_array,
                *params.kernel_constants(dtype),
                membrane_array,
                spikes_array,
            )
            spikes, membrane = torch.from_numpy(spikes_array), torch.from_numpy(membrane_array)
            ctx.arrays = (membrane_array, spikes_array, block_array)  # the backward kernel's views, kept
        else:
            total = current if bias is None else current + bias
            spikes, membrane = scan_reference(total.contiguous(), params, blocks)
        ctx.save_for_backward(membrane, spikes, blocks)
        ctx.params = params
        ctx.mark_non_differentiable(membrane)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the membrane output
        return spikes, membrane

    @staticmethod
    def backward(ctx, grad_spikes, _grad_membrane):  # type: ignore[override]
        membrane, spikes, blocks = ctx.saved_tensors  # (also checks that nothing modified them in place)
        params: LIFParameters = ctx.params
        if grad_spikes is None:
            return None, None, None, None
        if ctx.arrays is not None and _use_kernels(grad_spikes):
            mem, spike_array, block_array = ctx.arrays
            dtype = mem.dtype.type
            grad_array = np.empty_like(mem)
            grad_bias_array = np.empty(mem.shape[-1], mem.dtype)
            grad_blocks_array = np.empty_like(block_array)
            lif_kernels.lif_backward(
                _as_array(grad_spikes),
                mem,
                spike_array,
                block_array,
                *params.kernel_constants(dtype),
                dtype(params.surrogate_width),
                grad_array,
                grad_bias_array,
                grad_blocks_array,
            )
            grad_current = torch.from_numpy(grad_array)
            grad_bias = torch.from_numpy(grad_bias_array)
            grad_blocks = torch.from_numpy(grad_blocks_array) if blocks is not None else None
        else:
            grad_current = _backward_reference(grad_spikes, membrane, spikes, blocks, params)
            grad_bias = grad_current.sum((0, 1))
            grad_blocks = None
            if blocks is not None:
                groups, pop = blocks.shape[0], blocks.shape[1]
                upstream = grad_current[1:].reshape(-1, groups, pop)
                previous = spikes[:-1].reshape(-1, groups, pop)
                grad_blocks = torch.einsum("ngi,ngj->gij", upstream, previous)
        needs = ctx.needs_input_grad
        return grad_current, grad_bias if needs[1] else None, grad_blocks if needs[2] else None, None


def current_lif_scan(
    current: torch.Tensor,
    params: LIFParameters,
    blocks: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the CUBA-LIF scan.

    Args:
        current: input current ``I``, shape ``[T, B, F]``.
        params: neuron constants.
        blocks: optional block-diagonal recurrent weights ``[G, P, P]`` with ``G * P = F``: population ``g``
            (neurons ``g*P .. g*P+P-1``) receives ``blocks[g] @ s_{t-1}[g]``.
        bias: optional ``[F]`` added to the current at every step (fused into the scan, so the layer's matmul
            can skip its bias term).

    Returns:
        ``(spikes, membrane)``, both ``[T, B, F]``; ``membrane`` is ``h_t`` (before reset) and carries no gradient.
    """
    if current.dim() != 3:
        raise ValueError(f"current must have shape [T, B, F], got {tuple(current.shape)}")
    if bias is not None and tuple(bias.shape) != (current.shape[-1],):
        raise ValueError(f"bias must have shape [{current.shape[-1]}], got {tuple(bias.shape)}")
    if blocks is not None and (
        blocks.dim() != 3
        or blocks.shape[1] != blocks.shape[2]
        or blocks.shape[0] * blocks.shape[1] != current.shape[-1]
    ):
        raise ValueError(
            f"recurrent blocks must have shape [G, P, P] with G*P = {current.shape[-1]}, got {tuple(blocks.shape)}"
        )
    return _CurrentLIFScan.apply(current, bias, blocks, params)


class CurrentLIF(nn.Module):
    """Current-based LIF layer without weights: maps input current ``[T, B, F]`` to spikes ``[T, B, F]``.

    Args:
        params: the neuron constants (default :class:`LIFParameters`: PopSAN's ``a_c = 0.5``, ``a_v = 0.75``,
            ``V_th = 0.5``, surrogate half-width 0.5).
    """

    def __init__(self, params: LIFParameters | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else LIFParameters()

    def forward(
        self, current: torch.Tensor, blocks: torch.Tensor | None = None, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Spikes ``[T, B, F]`` (0/1 floats) for input current ``[T, B, F]`` (plus ``bias [F]``) and optional
        recurrent blocks ``[G, P, P]`` (see :func:`current_lif_scan`)."""
        return current_lif_scan(current, self.params, blocks, bias)[0]

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"current_decay={p.current_decay}, voltage_decay={p.voltage_decay}, "
            f"threshold={p.threshold}, surrogate_width={p.surrogate_width}"
        )
