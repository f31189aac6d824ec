"""Synapses: grouped readouts of output populations, and spike-driven (event) matrix products."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurons import event_kernels


class GroupedLinear(nn.Module):
    """``y[..., g] = sum_k w[g, k] x[..., g * P + k] + b[g]``: ``G`` independent ``P -> 1`` readouts.

    This is PopSAN's decoder (a grouped ``Conv1d``); each action dimension sees only its own population.
    Input ``[..., G * P]`` -> output ``[..., G]``.
    """

    def __init__(self, groups: int, group_size: int) -> None:
        super().__init__()
        self.groups = groups
        self.group_size = group_size
        bound = 1.0 / math.sqrt(group_size)  # PyTorch's Conv1d default init for fan_in = P
        self.weight = nn.Parameter(torch.empty(groups, group_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(*x.shape[:-1], self.groups, self.group_size)
        return (grouped * self.weight).sum(-1) + self.bias

    def extra_repr(self) -> str:
        return f"groups={self.groups}, group_size={self.group_size}"


def input_major(linear: nn.Linear) -> nn.Linear:
    """``linear`` with its weight ``[F_out, F_in]`` stored input-major (``weight.t()`` is contiguous), in place.

    Values, shapes and the module's behaviour are unchanged. Spike-driven products sum the weight rows of the
    inputs that spiked, i.e. rows of ``W^T``: with this layout :func:`spike_linear` and the event kernels read
    them in place, with no transposed copy per call. Every in-place write keeps the layout.
    """
    linear.weight = nn.Parameter(linear.weight.detach().t().contiguous().t(), linear.weight.requires_grad)
    return linear


# Crossovers measured on 500 x 256 spike inputs (one thread): spike lists + row sums vs the GEMM take 350 vs 600 us
# at density 0.3 and meet near 0.5 for 256 outputs; for 60 outputs 140 vs 180 us at 0.3.
EVENT_DENSITY_MAX = 0.45  # above this spike density a dense GEMM beats summing weight rows per spike
EVENT_FAN_OUT_MIN = 32  # for narrower layers the GEMM is cheaper than finding the spikes


@dataclass
class SpikeEvents:
    """Where a binary ``[R, F]`` input spiked, as index/offset tensors for
    :func:`torch.nn.functional.embedding_bag`: row by row (:meth:`by_row`), and input by input
    (:meth:`by_input`, built on first use: only the weight gradient needs it)."""

    cols: np.ndarray  # input index of every spike, row by row (int32)
    row_offsets: np.ndarray  # [R + 1] (int32)
    num_inputs: int
    _by_input: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @classmethod
    def find(cls, x: torch.Tensor) -> SpikeEvents | None:
        """Events of ``x [R, F]`` if it is a CPU float32 binary matrix with density <= :data:`EVENT_DENSITY_MAX`."""
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return None
        max_count = int(EVENT_DENSITY_MAX * x.numel())
        cols = np.empty(max_count + event_kernels.EVENT_SLACK, np.int32)
        row_offsets = np.empty(x.shape[0] + 1, np.int32)
        count = event_kernels.spike_events(
            x.detach().contiguous().numpy(), max_count, cols, row_offsets,
            event_kernels.BYTE_POSITIONS, event_kernels.BYTE_COUNTS,
        )  # fmt: skip
        if count < 0:
            return None
        return cls(cols[:count], row_offsets, x.shape[1])

    def by_row(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cols, offsets [R])``: the input index of every spike, row by row."""
        return torch.from_numpy(self.cols), torch.from_numpy(self.row_offsets[:-1])

    def by_input(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, offsets [F])``: the row of every spike, input by input (rows ascending)."""
        if self._by_input is None:
            rows = np.empty_like(self.cols)
            col_offsets = np.empty(self.num_inputs + 1, np.int32)
            event_kernels.events_by_input(self.cols, self.row_offsets, rows, col_offsets)
            self._by_input = (torch.from_numpy(rows), torch.from_numpy(col_offsets[:-1]))
        return self._by_input


class _SpikeLinear(torch.autograd.Function):
    """``x @ weight.T`` for spikes ``x``: output and weight gradient as sums of rows selected by the spikes
    (``embedding_bag``) when ``x`` is sparse and binary, else dense GEMMs; the input gradient is a GEMM (on
    ``B`` rows instead of ``T * B`` for a straight-through source, see :func:`spike_linear`)."""

    @staticmethod
    def forward(ctx, x, weight, straight_through):  # type: ignore[override]
        events = SpikeEvents.find(x) if weight.shape[0] >= EVENT_FAN_OUT_MIN else None
        if events is not None:
            cols, offsets = events.by_row()
            out = F.embedding_bag(cols, weight.detach().t().contiguous(), offsets, mode="sum")  # no copy: input_major
        else:
            out = x.matmul(weight.t())
        ctx.save_for_backward(x, weight)
        ctx.events = events
        ctx.samples = straight_through.shape[0] if straight_through is not None else 0
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        events: SpikeEvents | None = ctx.events
        needs_x, needs_weight, needs_straight_through = ctx.needs_input_grad
        grad_x = grad.matmul(weight) if needs_x else None
        grad_straight_through = None
        if needs_straight_through:  # d x_t / d source = 1 for every t: sum the T row blocks, then one GEMM
            grad_straight_through = grad.view(-1, ctx.samples, grad.shape[1]).sum(0).matmul(weight)
        grad_weight = None
        if needs_weight:
            if events is not None:
                rows, offsets = events.by_input()
                grad_weight = F.embedding_bag(rows, grad.contiguous(), offsets, mode="sum").t()
            else:
                grad_weight = grad.t().matmul(x)
        return grad_x, grad_weight, grad_straight_through


def spike_linear(x: torch.Tensor, weight: torch.Tensor, straight_through: torch.Tensor | None = None) -> torch.Tensor:
    """``x [R, F_in] @ weight[F_out, F_in].T`` (no bias), event-driven where the input is sparse spikes.

    For binary ``x`` on CPU (float32) with at most :data:`EVENT_DENSITY_MAX` non-zeros and at least
    :data:`EVENT_FAN_OUT_MIN` outputs, the output sums the weight columns of the inputs that spiked and the
    weight gradient sums, per input, the output gradients of the rows where it spiked (both through
    ``embedding_bag``), instead of dense GEMMs; the input gradient stays a GEMM. Other inputs (dense,
    real-valued, other devices) take ``torch.matmul``. Both give the same values up to the floating-point
    summation order.

    ``straight_through`` (``[B, F_in]``, ``R = T * B``, rows ordered ``t * B + b``) is the source of
    straight-through spikes (e.g. the encoder's activation, ``d x[t * B + b] / d source[b] = 1``): it receives
    the input gradient, computed as ``(sum_t dL/dout_t) @ weight`` (T times fewer multiply-adds), and ``x``
    itself must then carry no gradient.
    """
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"spike_linear needs x [R, F_in] and weight [F_out, F_in], got {tuple(x.shape)}, "
                         f"{tuple(weight.shape)}")  # fmt: skip
    if straight_through is not None:
        if x.requires_grad:
            raise ValueError("spike_linear: x must not require grad when a straight_through source is given")
        if (
            straight_through.dim() != 2
            or straight_through.shape[1] != x.shape[1]
            or (x.shape[0] % max(straight_through.shape[0], 1))
        ):
            raise ValueError(f"straight_through must have shape [B, {x.shape[1]}] with B dividing {x.shape[0]} "
                             f"rows, got {tuple(straight_through.shape)}")  # fmt: skip
    return _SpikeLinear.apply(x.contiguous(), weight, straight_through)
