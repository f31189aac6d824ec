"""Synapses: grouped readouts of output populations, and spike-driven (event) matrix products."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


EVENT_DENSITY_MAX = 0.3  # above this spike density a dense GEMM beats summing weight rows per spike
EVENT_FAN_OUT_MIN = 128  # for narrower layers the GEMM is cheaper than finding the spikes


@dataclass
class SpikeEvents:
    """Where a binary ``[R, F]`` input spiked, row-major (``cols``/``row_offsets``) and column-major
    (``rows``/``col_offsets``), as index/offset tensors for :func:`torch.nn.functional.embedding_bag`."""

    cols: torch.Tensor
    row_offsets: torch.Tensor
    rows: torch.Tensor
    col_offsets: torch.Tensor

    @classmethod
    def find(cls, x: torch.Tensor) -> SpikeEvents | None:
        """Events of ``x [R, F]`` if it is a CPU float32 binary matrix with density <= :data:`EVENT_DENSITY_MAX`."""
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return None
        n_rows, n_cols = x.shape
        capacity = int(EVENT_DENSITY_MAX * x.numel())
        cols, rows = torch.empty(capacity, dtype=torch.int32), torch.empty(capacity, dtype=torch.int32)
        row_offsets = torch.empty(n_rows + 1, dtype=torch.int32)
        col_offsets = torch.empty(n_cols + 1, dtype=torch.int32)
        count = event_kernels.spike_events(
            x.detach().numpy(), cols.numpy(), row_offsets.numpy(), rows.numpy(), col_offsets.numpy()
        )
        if count < 0:
            return None
        return cls(cols[:count], row_offsets[:-1], rows[:count], col_offsets[:-1])


class _SpikeLinear(torch.autograd.Function):
    """``x @ weight.T`` for spikes ``x``: output and weight gradient as sums of rows selected by the spikes
    (``embedding_bag``) when ``x`` is sparse and binary, else dense GEMMs; the input gradient is a GEMM."""

    @staticmethod
    def forward(ctx, x, weight):  # type: ignore[override]
        events = SpikeEvents.find(x) if weight.shape[0] >= EVENT_FAN_OUT_MIN else None
        if events is not None:
            out = F.embedding_bag(events.cols, weight.detach().t().contiguous(), events.row_offsets, mode="sum")
        else:
            out = x.matmul(weight.t())
        ctx.save_for_backward(x, weight)
        ctx.events = events
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        events: SpikeEvents | None = ctx.events
        grad_x = grad.matmul(weight) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            if events is not None:
                grad_weight = F.embedding_bag(events.rows, grad.contiguous(), events.col_offsets, mode="sum").t()
            else:
                grad_weight = grad.t().matmul(x)
        return grad_x, grad_weight


def spike_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x [R, F_in] @ weight[F_out, F_in].T`` (no bias), event-driven where the input is sparse spikes.

    For binary ``x`` on CPU (float32) with at most :data:`EVENT_DENSITY_MAX` non-zeros and at least
    :data:`EVENT_FAN_OUT_MIN` outputs, the output sums the
    weight columns of the inputs that spiked and the weight gradient sums, per input, the output gradients of
    the rows where it spiked (both through ``embedding_bag``), instead of dense GEMMs; the input gradient stays
    a GEMM. Other inputs (dense, real-valued, other devices) take ``torch.matmul``. Both give the same values up
    to the floating-point summation order.
    """
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"spike_linear needs x [R, F_in] and weight [F_out, F_in], got {tuple(x.shape)}, "
                         f"{tuple(weight.shape)}")  # fmt: skip
    return _SpikeLinear.apply(x.contiguous(), weight)
