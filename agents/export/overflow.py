"""Static overflow check: prove from the quantised weights and fan-in that no integer state can overflow.

For a LIF layer with per-neuron drive bound ``c_f = sum_j |Wq_jf| * 2^H + |bias_f|`` (the output layer adds
its intra-layer row), round-toward-zero decays never grow a magnitude, so over ``T`` steps::

    |I_t| <= c_f * sum_{k<T} (alpha_q / 2^D)^k          |V_t| <= max|I| * sum_{k<T} (beta_q / 2^D)^k

Every partial sum in the datapath is a sub-sum of these, so the bounds cover the intermediates too. The
readout is bounded the same way (``T`` times larger when it sums over steps), and its int64 output product
must stay below 2^62 for the rounding helper. The export fails with the layer named if a bound exceeds the
state width (``int32`` by default; 24 for a Loihi-style target).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from agents.export.blimp_quantization import (
    ERROR_CLIP_Q16,
    ERROR_FRACTION_BITS,
    TRACE_BITS,
    IntegerBlimpController,
    geometric_gain,
)
from agents.export.quantization import DECAY_BITS, OUT_SHIFT, ExportError, IntegerPolicy

PRODUCT_LIMIT = 2**62  # |x| bound accepted by the int64 rounding helpers


class OverflowRiskError(ExportError):
    """A quantised layer could overflow its integer state; the message names the layer and the bound."""


@dataclass
class LayerBound:
    """Proven worst-case magnitudes of one layer (state units)."""

    layer: str
    current_bound: int
    voltage_bound: int
    bits_used: int  # signed bits needed for the largest bound
    margin_bits: int  # state width minus bits used


def _geometric(decay_q: int, steps: int) -> float:
    ratio = decay_q / (1 << DECAY_BITS)
    return float(sum(ratio**k for k in range(steps)))


def _bits(value: int) -> int:
    return max(1, int(value).bit_length()) + 1  # + sign bit


def _layer_bound(name: str, current: float, voltage: float, state_bits: int, remedy: str) -> LayerBound:
    """The bound of one layer; raises :class:`OverflowRiskError` (suggesting to reduce ``remedy``) if it does not
    fit ``state_bits``-bit signed states."""
    current_i, voltage_i = math.ceil(current), math.ceil(voltage)
    peak, limit = max(current_i, voltage_i), 2 ** (state_bits - 1) - 1
    if peak > limit:
        raise OverflowRiskError(
            f"layer {name!r} can overflow its {state_bits}-bit state: worst-case |state| {peak} > {limit} "
            f"({_bits(peak)} bits needed). Reduce {remedy}"
        )
    return LayerBound(name, current_i, voltage_i, _bits(peak), state_bits - _bits(peak))


def check_overflow(policy: IntegerPolicy, state_bits: int = 32) -> list[LayerBound]:
    """Bounds per layer (hidden, output, readout); raises :class:`OverflowRiskError` naming the first layer
    whose bound does not fit ``state_bits``-bit signed states."""
    steps, headroom = policy.timesteps, 1 << policy.headroom_bits
    bounds: list[LayerBound] = []

    def record(name: str, current: float, voltage: float) -> None:
        remedy = (
            "the weights' dynamic range (a few large weights with a large bias/threshold), the headroom bits, "
            "or the timesteps"
        )
        bounds.append(_layer_bound(name, current, voltage, state_bits, remedy))

    for layer in policy.layers:
        drive = np.abs(layer.weight_t.astype(np.int64)).sum(axis=0)
        if layer.blocks_t is not None:
            drive = drive + np.abs(layer.blocks_t.astype(np.int64)).sum(axis=1).reshape(-1)
        constant = drive * headroom + np.abs(layer.bias)
        current = float(constant.max(initial=0)) * _geometric(layer.current_decay, steps)
        voltage = current * _geometric(layer.voltage_decay, steps)
        voltage = max(voltage, float(np.abs(layer.threshold).max(initial=0)))
        record(layer.name, current, voltage)

    readout = policy.readout
    drive = np.abs(readout.weight.astype(np.int64)).sum(axis=1) * headroom + np.abs(readout.bias)
    per_step = float(drive.max(initial=0)) * _geometric(readout.decay, steps)
    decoded = per_step * (steps if readout.mode == "mean" else 1)
    record("readout", per_step, decoded)
    product = decoded * float(np.abs(readout.out_mult).max(initial=0))
    if product >= PRODUCT_LIMIT or np.abs(readout.out_mult).max(initial=0) > 2**31 - 1:
        raise OverflowRiskError(
            f"layer 'readout': the output gain product {product:.3g} exceeds the int64 rounding range 2^62"
        )
    total_sops = policy.worst_case_sops()
    if total_sops > 2**32 - 1:
        raise OverflowRiskError(f"the network is too large for the uint32 SOP counter ({total_sops} worst case)")
    return bounds


def bounds_table(bounds: list[LayerBound]) -> list[dict]:
    """Plain dicts for JSON reports."""
    return [asdict(bound) for bound in bounds]


def check_blimp_overflow(controller: IntegerBlimpController, state_bits: int = 32) -> list[LayerBound]:
    """Bounds per layer of an :class:`agents.export.blimp_quantization.IntegerBlimpController`, valid for any
    number of control ticks; raises :class:`OverflowRiskError` naming the first layer (``<network>/<layer>``) whose
    bound does not fit ``state_bits``-bit signed states.

    With every retention ``tau_q <= 4095`` and round-toward-zero decays, a leaky state driven by at most ``c`` per
    tick stays below ``c / (1 - tau_q / 2^D)``. Encoding: ``c = |w_q| ERROR_CLIP >> (16 - H) + 1 + |b|`` (the ``+1``
    covers rounding), the soft reset subtracts at most ``|theta|``. IWTA traces stay below ``2^F / (1 - tau_th)``,
    so the adapted threshold below ``|theta_base| + sum_j |W_th,ij| a_max,j / 2^(F-H) + 1``. Hidden: ``c = sum |w|
    2^H``, the voltage adds the threshold bound. Readout: ``sum |g_q| 2^H`` over the same gain; the command
    product must stay below 2^62 and the summed command inside int32.
    """
    unit = 1 << controller.headroom_bits
    bounds: list[LayerBound] = []

    def record(name: str, current: np.ndarray | float, voltage: np.ndarray | float) -> None:
        peaks = (float(np.max(current, initial=0)), float(np.max(voltage, initial=0)))
        bounds.append(_layer_bound(name, *peaks, state_bits, "the weight or headroom bits, or the retentions"))

    command_total = 0
    for net in controller.networks:
        tag = net.name
        shift = ERROR_FRACTION_BITS - controller.headroom_bits
        enc_current = (np.abs(net.enc_weight.astype(np.int64)) * ERROR_CLIP_Q16 >> shift) + 1 + np.abs(net.enc_bias)
        enc_voltage = (enc_current + np.abs(net.enc_threshold)) * geometric_gain(net.enc_decay)
        record(f"{tag}/encoding", enc_current, enc_voltage)
        threshold = np.abs(net.hid_threshold).astype(np.float64)
        if net.iwta:
            trace = (1 << TRACE_BITS) * geometric_gain(net.th_decay)
            record(f"{tag}/iwta-trace", trace, trace)
            adapt = np.abs(net.th_weight.astype(np.int64)) @ trace / (1 << (TRACE_BITS - controller.headroom_bits))
            threshold = threshold + adapt + 1
        drive = np.abs(net.hid_weight.astype(np.int64)).sum(axis=1)
        if net.recurrent:
            drive = drive + np.abs(net.rec_weight_t.astype(np.int64)).sum(axis=0)
        hid_current = drive * unit * geometric_gain(net.hid_syn_decay)
        record(
            f"{tag}/hidden",
            np.maximum(hid_current, threshold),
            (hid_current + threshold) * geometric_gain(net.hid_mem_decay),
        )
        readout = float(np.abs(net.dec_weight.astype(np.int64)).sum() * unit * geometric_gain(net.dec_decay))
        record(f"{tag}/readout", readout, readout)
        product = math.ceil(readout) * net.out_mult
        if product >= PRODUCT_LIMIT:
            raise OverflowRiskError(f"layer '{tag}/readout': the command product {product:.3g} exceeds 2^62")
        command_total += (product >> OUT_SHIFT) + 1
    record("command", command_total, command_total)
    return bounds
