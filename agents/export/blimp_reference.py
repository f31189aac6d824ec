"""NumPy integer reference of an :class:`IntegerBlimpController` (int64 arrays only, no floating point), and the
closed-loop controller that wraps an integer executor.

The controller keeps its state between control ticks (unlike the RL actors, which restart every action). Per
tick, for every network (``rtz``/``rhaz`` of :mod:`agents.export.reference`; ``H`` headroom, ``F`` trace bits)::

    e      = sat(error_q, +-ERROR_CLIP_Q16)
    enc    v = rtz(tau_q v, 12) + rhaz(w_q e, 16 - H) + b_q - r ;  s = v > theta_q ;  r = s theta_q
    iwta   a = rtz(tau_th a, 12) + s_enc 2^F ;  theta_i = theta_base_i + rhaz(sum_j W_th,ij a_j, F - H)
    hidden c = rtz(tau_syn c, 12) + (W_block s_enc [+ W_rec s_hid(t-1)]) 2^H
           v = rtz(tau_mem v, 12) + c - r ;  s = v > theta ;  r = s theta        (soft reset by the fired threshold)
    readout y = rtz(tau_d y, 12) + (g_q . s_hid) 2^H ;  command_q = rhaz(y out_mult, 20)

and the controller's command is the sum of its networks' ``command_q`` (int32 Q16.16 code units).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agents.export.blimp_quantization import (
    ERROR_CLIP_Q16,
    ERROR_FRACTION_BITS,
    TRACE_BITS,
    IntegerBlimpController,
    IntegerBlimpNetwork,
)
from agents.export.quantization import DECAY_BITS, OUT_SHIFT
from agents.export.reference import rhaz, rtz


@dataclass
class BlimpTrace:
    """Integer outputs of ``T`` control ticks.

    Attributes:
        commands: int64 ``[T]``, Q16.16 code units (summed over networks).
        spikes: int64 ``[T, 2 L]``, encoding and hidden spikes per network (``L`` networks, in order).
        sops: int64 ``[T]``, synaptic operations (encoding spike: 2 (+ N with IWTA); hidden: 1 (+ N recurrent)).
        saturated: int64 ``[T]``, 1 where the error was clipped to ``+-ERROR_CLIP_Q16``.
    """

    commands: np.ndarray
    spikes: np.ndarray
    sops: np.ndarray
    saturated: np.ndarray


class BlimpExecutor(Protocol):
    """A stateful integer controller: :class:`BlimpReference` or :class:`agents.export.c_build.CBlimpController`."""

    def reset(self) -> None: ...

    def run(self, errors_q: np.ndarray) -> BlimpTrace: ...


class _NetworkState:
    def __init__(self, network: IntegerBlimpNetwork) -> None:
        i64, n = np.int64, network.hidden
        self.net = network
        self.arrays = {key: np.asarray(value).astype(i64) for key, value in network.arrays().items()}
        self.enc_v, self.enc_reset = np.zeros(n, i64), np.zeros(n, i64)
        self.hid_c, self.hid_v, self.hid_reset = np.zeros(n, i64), np.zeros(n, i64), np.zeros(n, i64)
        self.hid_s, self.trace = np.zeros(n, i64), np.zeros(n, i64)
        self.readout = np.int64(0)


class BlimpReference:
    """Step-by-step executor of an :class:`IntegerBlimpController` (the definition the C matches bit for bit)."""

    def __init__(self, controller: IntegerBlimpController) -> None:
        self.controller = controller
        self.state_peaks: dict[str, int] = {}  # largest |state| seen per layer (checks the overflow proof)
        self.reset()

    def reset(self) -> None:
        """Zero every state (the controller's power-on state)."""
        self._states = [_NetworkState(net) for net in self.controller.networks]

    def _peak(self, name: str, *states: np.ndarray) -> None:
        peak = max(int(np.abs(state).max(initial=0)) for state in states)
        self.state_peaks[name] = max(self.state_peaks.get(name, 0), peak)

    def _tick(self, st: _NetworkState, error: np.int64) -> tuple[np.int64, int, int]:
        a, net, h = st.arrays, st.net, self.controller.headroom_bits
        current = rhaz(a["enc_weight"] * error, ERROR_FRACTION_BITS - h) + a["enc_bias"]
        st.enc_v = rtz(a["enc_decay"] * st.enc_v, DECAY_BITS) + current - st.enc_reset
        s_enc = (st.enc_v > a["enc_threshold"]).astype(np.int64)
        st.enc_reset = s_enc * a["enc_threshold"]
        drive = (a["hid_weight"].reshape(-1, 2, 2) * s_enc.reshape(-1, 1, 2)).sum(axis=-1).reshape(-1)
        if net.recurrent:
            drive = drive + st.hid_s @ a["rec_weight_t"]
        threshold = a["hid_threshold"]
        if net.iwta:
            st.trace = rtz(a["th_decay"] * st.trace, DECAY_BITS) + (s_enc << TRACE_BITS)
            threshold = threshold + rhaz(a["th_weight"] @ st.trace, TRACE_BITS - h)
        st.hid_c = rtz(a["hid_syn_decay"] * st.hid_c, DECAY_BITS) + (drive << h)
        st.hid_v = rtz(a["hid_mem_decay"] * st.hid_v, DECAY_BITS) + st.hid_c - st.hid_reset
        st.hid_s = (st.hid_v > threshold).astype(np.int64)
        st.hid_reset = st.hid_s * threshold
        st.readout = rtz(np.int64(net.dec_decay) * st.readout, DECAY_BITS) + (int(st.hid_s @ a["dec_weight"]) << h)
        self._peak(f"{net.name}/encoding", st.enc_v, current)
        self._peak(f"{net.name}/hidden", st.hid_c, st.hid_v, threshold)
        self._peak(f"{net.name}/readout", st.readout)
        command = rhaz(np.int64(st.readout) * np.int64(net.out_mult), OUT_SHIFT)
        return command, int(s_enc.sum()), int(st.hid_s.sum())

    def run(self, errors_q: np.ndarray) -> BlimpTrace:
        """Advance ``T`` ticks from the current state; ``errors_q``: integer ``[T]`` (or a scalar), Q16.16 m."""
        errors_q = np.atleast_1d(np.asarray(errors_q))
        if errors_q.ndim != 1 or not np.issubdtype(errors_q.dtype, np.integer):
            raise ValueError(f"integer errors must be an integer array [T], got {errors_q.dtype} {errors_q.shape}")
        steps, nets = errors_q.shape[0], len(self._states)
        trace = BlimpTrace(np.zeros(steps, np.int64), np.zeros((steps, 2 * nets), np.int64),
                           np.zeros(steps, np.int64), np.zeros(steps, np.int64))  # fmt: skip
        for t, raw in enumerate(errors_q.astype(np.int64)):
            error = np.clip(raw, -ERROR_CLIP_Q16, ERROR_CLIP_Q16)
            trace.saturated[t] = int(error != raw)
            for k, st in enumerate(self._states):
                command, enc, hid = self._tick(st, error)
                enc_fan, hid_fan = st.net.fan_out
                trace.commands[t] += command
                trace.spikes[t, 2 * k : 2 * k + 2] = enc, hid
                trace.sops[t] += enc * enc_fan + hid * hid_fan
        return trace


def error_to_q16(error: np.ndarray | float) -> np.ndarray:
    """Altitude error (m) -> int32 Q16.16, saturating at the int32 range (the integer controller clips further)."""
    scaled = np.round(np.asarray(error, np.float64) * (1 << ERROR_FRACTION_BITS))
    return np.clip(scaled, -(2**31), 2**31 - 1).astype(np.int32)


def command_from_q16(command_q: np.ndarray | int) -> np.ndarray:
    """Q16.16 command -> code units (float, for the environment)."""
    return np.asarray(command_q, np.float64) / (1 << ERROR_FRACTION_BITS)


class IntegerController:
    """An integer executor (:class:`BlimpReference` or a C library) as a closed-loop blimp controller
    (:class:`agents.blimp.controllers.Controller`): float error in m -> float command in code units."""

    def __init__(self, executor: BlimpExecutor) -> None:
        self.executor = executor
        self.totals = {"spikes_encoding": 0.0, "spikes_hidden": 0.0, "sops": 0.0}
        self.commands_q: list[int] = []

    def reset(self) -> None:
        self.executor.reset()
        self.totals = dict.fromkeys(self.totals, 0.0)
        self.commands_q = []

    def __call__(self, error: float) -> float:
        trace = self.executor.run(error_to_q16(error).reshape(1))
        self.totals["spikes_encoding"] += float(trace.spikes[0, 0::2].sum())
        self.totals["spikes_hidden"] += float(trace.spikes[0, 1::2].sum())
        self.totals["sops"] += float(trace.sops[0])
        self.commands_q.append(int(trace.commands[0]))
        return float(command_from_q16(trace.commands[0]))

    def activity(self) -> dict[str, float]:
        """Spike and synaptic-operation totals since :meth:`reset`."""
        return dict(self.totals)
