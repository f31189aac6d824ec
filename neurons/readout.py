"""Non-spiking readout neurons: the membrane voltage itself is the output (ILC-SAN, DSQN).

For input current ``u_t`` (``[T, B, M]``)::

    V_t = decay * V_{t-1} + u_t,   V_{-1} = 0

The recursion is linear, so all ``T`` voltages come from one ``[T, T]`` matmul with the decay kernel
``K[t, k] = decay^(t - k)`` for ``k <= t``. Decode modes:

* ``last``: ``V_{T-1}`` (ILC-SAN default),
* ``mean``: mean over ``t``,
* ``max-abs``: the signed ``V_t`` of largest magnitude over ``t`` (the original code's ``max-mem``).

:data:`DECODE_CODES` (defined next to the compiled kernels that branch on it, :mod:`neurons.event_kernels`)
numbers these modes, plus PopSAN's rate decoder ``rate``, for those kernels and the integer export (the
generated C's ``DECODE`` macro): the one table every implementation of the decoder uses.
"""

from __future__ import annotations

import torch
from torch import nn

from neurons.event_kernels import DECODE_CODES

DECODE_MODES = tuple(mode for mode in DECODE_CODES if mode != "rate")  # NonSpikingReadout's (rate: PopSAN's)


class NonSpikingReadout(nn.Module):
    """Integrating membrane without threshold: current ``[T, B, M]`` -> decoded voltage ``[B, M]``.

    Args:
        decay: membrane retention per step ``lambda`` in [0, 1] (default 1.0: pure integration).
        mode: ``"last"``, ``"mean"`` or ``"max-abs"``.
    """

    def __init__(self, decay: float = 1.0, mode: str = "last") -> None:
        super().__init__()
        if mode not in DECODE_MODES:
            raise ValueError(f"unknown readout mode {mode!r}; valid: {', '.join(DECODE_MODES)}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"readout decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.mode = mode
        self._kernel_key: tuple = ()
        self.register_buffer("_kernel", torch.empty(0), persistent=False)

    def kernel(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        """Decay kernel ``[steps, steps]`` with ``K[t, k] = decay^(t-k)`` for ``k <= t``, else 0."""
        key = (steps, self.decay, like.dtype, like.device)
        if self._kernel_key != key:
            t = torch.arange(steps, dtype=torch.float64)
            lag = t.view(-1, 1) - t.view(1, -1)
            kernel = torch.where(lag >= 0, torch.tensor(self.decay, dtype=torch.float64) ** lag.clamp(min=0), 0.0)
            self._kernel = kernel.to(dtype=like.dtype, device=like.device)
            self._kernel_key = key
        return self._kernel

    def membrane(self, current: torch.Tensor) -> torch.Tensor:
        """All voltages ``V_t``, shape ``[T, B, M]``."""
        steps = current.shape[0]
        if self.decay == 1.0:
            return torch.cumsum(current, dim=0)
        flat = current.reshape(steps, -1)
        return (self.kernel(steps, current) @ flat).view_as(current)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if current.dim() != 3:
            raise ValueError(f"readout current must have shape [T, B, M], got {tuple(current.shape)}")
        if self.mode == "last":
            if self.decay == 1.0:
                return current.sum(0)
            weights = self.kernel(current.shape[0], current)[-1]
            return torch.tensordot(weights, current, dims=1)
        voltage = self.membrane(current)
        if self.mode == "mean":
            return voltage.mean(0)
        index = voltage.abs().argmax(dim=0, keepdim=True)
        return voltage.gather(0, index).squeeze(0)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, mode={self.mode!r}"
