"""Post-training quantisation of evolved blimp SNN controllers (:mod:`agents.blimp.snn`) into integers.

One network (N hidden neurons, N encoding neurons in N/2 sign pairs) becomes, per neuron, a real scale ``k``
(state units per float unit are ``k * 2^H``) folded into every constant of that neuron::

    input      e_q = sat(error * 2^16, +-ERROR_CLIP_Q16)                       int32 Q16.16, m
    encoding   w_q = round(+-w k) (int8/int16), b_q, theta_q = round(. * k * 2^H)   one k per sign pair
    hidden     row i = [2x2 block row, recurrent row, IWTA threshold row]: w_q = round(w k_i)
               theta_base_q = round(theta k_i 2^H); IWTA traces a_q = a * 2^TRACE_BITS
    readout    g = (1 - tau_d) W_d, g_q = round(g k_o); command_q = rhaz(y_q * out_mult, OUT_SHIFT)   Q16.16
    decays     round(tau * 2^12), at most 4095 (a retention that rounds to 1 would leave states unbounded)

The scales are the largest that the worst-case state bound allows: ``k = min(W_max / max|row|,
STATE_BUDGET / (2^H B))`` where ``B`` is the neuron's proven worst-case ``|state|`` per unit scale (the same
formulas as :func:`agents.export.overflow.check_blimp_overflow`, evaluated on the float parameters). Long-memory
neurons (retention near 1) therefore get coarser resolution instead of overflowing their int32 states.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from agents.blimp.snn import HIDDEN_VARIANTS, SNNArchitecture
from agents.export.network import IntegerNetwork
from agents.export.quantization import (
    DECAY_BITS,
    HEADROOM_BITS,
    OBS_FRACTION_BITS,
    OUT_SHIFT,
    ExportError,
    quantize_decay,
    quantize_state_constant,
    quantize_weights,
)

ERROR_FRACTION_BITS = OBS_FRACTION_BITS  # error in, command out: int32 Q16.16 (m, code units)
ERROR_CLIP_Q16 = 8 << ERROR_FRACTION_BITS  # |error| saturates at 8 m (the blimp's room is ~3 m high)
TRACE_BITS = 16  # IWTA presynaptic traces in Q16 spikes
DECAY_MAX_Q = (1 << DECAY_BITS) - 1  # retention 4095/4096 at most: every state provably bounded
STATE_BUDGET = 2**30  # scales keep the proven |state| below this (one bit of int32 margin for rounding)
WEIGHT_BITS = (8, 16)


def geometric_gain(decay_q: np.ndarray | int) -> np.ndarray:
    """``1 / (1 - decay_q / 2^D)``: the worst-case gain of a leaky state with round-toward-zero decay."""
    return 1.0 / (1.0 - np.asarray(decay_q, np.float64) / (1 << DECAY_BITS))


def quantize_decays(decay: np.ndarray) -> np.ndarray:
    """Per-neuron ``min(round(decay * 2^D), 2^D - 1)`` (int64)."""
    return np.array([min(quantize_decay(float(d)), DECAY_MAX_Q) for d in np.ravel(decay)], np.int64)


@dataclass
class IntegerBlimpNetwork:
    """One evolved network in integers (``N`` hidden neurons; state units per neuron are ``scale * 2^H``).

    Attributes:
        name: ``pd``, ``i`` or another label (C identifiers are derived from it).
        variant: hidden variant of :data:`agents.blimp.snn.HIDDEN_VARIANTS`.
        enc_weight: int ``[N]``, signed input weights ``(+w_0, -w_0, +w_1, ...)`` per Q16 error.
        enc_bias, enc_threshold: int64 ``[N]`` state units; enc_decay: int64 ``[N]`` Q12 membrane retention.
        hid_weight: int ``[N, 2]``, neuron ``2g + r`` from encoding neurons ``2g`` and ``2g + 1``.
        hid_syn_decay, hid_mem_decay: int64 ``[N]`` Q12; hid_threshold: int64 ``[N]`` base threshold.
        rec_weight_t: int ``[N, N]`` (``[pre, post]``) recurrent weights, or ``None``.
        th_decay: int64 ``[N]`` Q12 trace retention, th_weight: int ``[N, N]`` (``[post, pre]``), or ``None``.
        dec_weight: int ``[N]`` readout gains ``(1 - tau_d) W_d`` times ``dec_scale``; dec_decay: Q12.
        out_mult: int64, readout state -> Q16.16 command: ``command_q = rhaz(y * out_mult, OUT_SHIFT)``.
        enc_scale, hid_scale: float ``[N]``; dec_scale: float (the real scales ``k``, for reports).
    """

    name: str
    variant: str
    enc_weight: np.ndarray
    enc_bias: np.ndarray
    enc_decay: np.ndarray
    enc_threshold: np.ndarray
    hid_weight: np.ndarray
    hid_syn_decay: np.ndarray
    hid_mem_decay: np.ndarray
    hid_threshold: np.ndarray
    dec_weight: np.ndarray
    dec_decay: int
    out_mult: int
    enc_scale: np.ndarray
    hid_scale: np.ndarray
    dec_scale: float
    rec_weight_t: np.ndarray | None = None
    th_decay: np.ndarray | None = None
    th_weight: np.ndarray | None = None

    @property
    def hidden(self) -> int:
        return self.hid_threshold.shape[0]

    @property
    def recurrent(self) -> bool:
        return self.rec_weight_t is not None

    @property
    def iwta(self) -> bool:
        return self.th_weight is not None

    @property
    def fan_out(self) -> tuple[int, int]:
        """SOPs per encoding spike and per hidden spike (the float model's definition)."""
        return 2 + (self.hidden if self.iwta else 0), 1 + (self.hidden if self.recurrent else 0)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field (``None`` ones left out) and the scalar integers, by field name."""
        out = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                out[item.name] = value
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[item.name] = np.asarray(value)
        return out


@dataclass
class IntegerBlimpController(IntegerNetwork):
    """One or more integer networks whose Q16.16 commands are summed every control tick (PD, or PD + I)."""

    npz_name: ClassVar[str] = "controller.npz"

    networks: list[IntegerBlimpNetwork]
    weight_bits: int
    headroom_bits: int = HEADROOM_BITS

    def arrays(self) -> dict[str, np.ndarray]:
        """All arrays, ``<network>_<field>``."""
        return {f"{net.name}_{key}": value for net in self.networks for key, value in net.arrays().items()}

    def spec(self) -> dict:
        """JSON-able description of formats, sizes and scalar constants."""
        return {
            "controller": "+".join(net.name for net in self.networks),
            "networks": [
                {"name": net.name, "variant": net.variant, "hidden": net.hidden, "dec_decay_q": net.dec_decay}
                for net in self.networks
            ],
            "weight_bits": self.weight_bits,
            "headroom_bits": self.headroom_bits,
            "decay_bits": DECAY_BITS,
            "trace_bits": TRACE_BITS,
            "out_shift": OUT_SHIFT,
            "error_format": f"int32 Q{32 - ERROR_FRACTION_BITS}.{ERROR_FRACTION_BITS} m, saturated at "
            f"+-{ERROR_CLIP_Q16 >> ERROR_FRACTION_BITS} m",
            "command_format": f"int32 Q{32 - ERROR_FRACTION_BITS}.{ERROR_FRACTION_BITS} code units (sum of networks)",
        }

    @classmethod
    def from_npz(cls, spec: dict, data) -> IntegerBlimpController:
        networks = []
        for info in spec["networks"]:
            values = {}
            for item in fields(IntegerBlimpNetwork):
                key = f"{info['name']}_{item.name}"
                if key in data:
                    array = data[key]
                    values[item.name] = array if array.ndim else array.item()
            networks.append(IntegerBlimpNetwork(name=info["name"], variant=info["variant"], **values))
        return cls(networks, spec["weight_bits"], spec["headroom_bits"])

    # ---- the pipeline's operations (agents.export.network) ----------------------------------------
    def worst_case_sops(self) -> int:
        """SOPs of one tick if every neuron spiked."""
        return sum(net.hidden * sum(net.fan_out) for net in self.networks)

    def check_overflow(self, state_bits: int = 32) -> list:
        from agents.export.overflow import check_blimp_overflow

        return check_blimp_overflow(self, state_bits)

    def reference(self):
        from agents.export.blimp_reference import BlimpReference

        return BlimpReference(self)

    def generate_c(self, prefix: str):
        from agents.export.blimp_codegen import generate_blimp_c

        return generate_blimp_c(self, prefix)

    def c_executor(self, library: Path, prefix: str):
        from agents.export.c_build import CBlimpController

        return CBlimpController(library, prefix, len(self.networks))


def _scales(peak_weight: np.ndarray, bound_per_unit: np.ndarray, weight_max: int, headroom_bits: int) -> np.ndarray:
    """``min(weight_max / peak, STATE_BUDGET / (2^H bound))`` per neuron (``weight_max`` for a zero peak)."""
    by_weight = weight_max / np.where(peak_weight > 0, peak_weight, 1.0)
    by_state = STATE_BUDGET / ((1 << headroom_bits) * np.maximum(bound_per_unit, 1e-12))
    return np.minimum(by_weight, by_state)


def quantize_network(
    architecture: SNNArchitecture, genome: np.ndarray, name: str, weight_bits: int = 16,
    headroom_bits: int = HEADROOM_BITS,
) -> IntegerBlimpNetwork:  # fmt: skip
    """Quantise one normalised genome ``[D]`` of ``architecture``; ``name`` labels it (a C identifier part)."""
    if weight_bits not in WEIGHT_BITS:
        raise ExportError(f"weight bits must be one of {WEIGHT_BITS}, got {weight_bits}")
    if architecture.variant not in HIDDEN_VARIANTS:
        raise ExportError(f"unknown hidden variant {architecture.variant!r}")
    p = {key: value[0].numpy() for key, value in architecture.decode(np.asarray(genome).reshape(1, -1)).items()}
    n, wmax, unit = architecture.hidden, (1 << (weight_bits - 1)) - 1, 1 << headroom_bits
    clip_m = ERROR_CLIP_Q16 / (1 << ERROR_FRACTION_BITS)

    # encoding: one scale per sign pair, from |w| and the pair's worst-case voltage
    enc_decay = quantize_decays(p["enc_mem_decay"])
    w, b, theta = p["enc_weight"], p["enc_bias"], p["enc_threshold"]
    current = np.abs(w) * clip_m + np.abs(b)
    voltage = ((np.repeat(current, 2) + theta) * geometric_gain(enc_decay)).reshape(-1, 2).max(axis=1)
    pair_scale = _scales(np.abs(w), np.maximum(current, voltage), wmax, headroom_bits)
    enc_scale = np.repeat(pair_scale, 2)
    signed = np.stack((w, -w), axis=-1).reshape(n, 1)

    # hidden: one scale per neuron over its 2x2-block row, recurrent row and IWTA threshold row
    syn_decay, mem_decay = quantize_decays(p["hid_syn_decay"]), quantize_decays(p["hid_mem_decay"])
    hid = p["hid_weight"].reshape(n, 2)
    rows = [hid]
    drive = np.abs(hid).sum(axis=1)
    threshold_bound = np.abs(p["hid_threshold"])
    th_decay = th_weight = None
    if architecture.recurrent:
        rows.append(p["rec_weight"])
        drive = drive + np.abs(p["rec_weight"]).sum(axis=1)
    if architecture.iwta:
        th_decay = quantize_decays(p["th_decay"])
        rows.append(p["th_weight"])
        threshold_bound = threshold_bound + np.abs(p["th_weight"]) @ geometric_gain(th_decay)
    current = drive * geometric_gain(syn_decay)
    voltage = (current + threshold_bound) * geometric_gain(mem_decay)
    row = np.concatenate(rows, axis=1)
    hid_scale = _scales(np.abs(row).max(axis=1), np.maximum(current, voltage), wmax, headroom_bits)

    # readout: the motor command y = tau_d y + (1 - tau_d) W_d . s
    dec_decay = int(quantize_decays(p["dec_decay"])[0])
    gain = (1.0 - p["dec_decay"][0]) * p["dec_weight"]
    bound = np.abs(gain).sum() * geometric_gain(dec_decay)
    dec_scale = float(_scales(np.abs(gain).max(keepdims=True), np.array([bound]), wmax, headroom_bits)[0])
    out_mult = round((1 << (ERROR_FRACTION_BITS + OUT_SHIFT)) / (dec_scale * unit))
    if out_mult > 2**31 - 1:
        raise ExportError(f"network {name!r}: readout gain too small to scale to Q16.16 (out_mult {out_mult})")

    def q(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return quantize_weights(values, scale, wmax)

    return IntegerBlimpNetwork(
        name=name,
        variant=architecture.variant,
        enc_weight=q(signed, enc_scale)[:, 0],
        enc_bias=quantize_state_constant(np.repeat(b, 2), enc_scale, headroom_bits),
        enc_decay=enc_decay,
        enc_threshold=quantize_state_constant(theta, enc_scale, headroom_bits),
        hid_weight=q(hid, hid_scale),
        hid_syn_decay=syn_decay,
        hid_mem_decay=mem_decay,
        hid_threshold=quantize_state_constant(p["hid_threshold"], hid_scale, headroom_bits),
        dec_weight=q(gain[None, :], np.array([dec_scale]))[0],
        dec_decay=dec_decay,
        out_mult=int(out_mult),
        enc_scale=enc_scale,
        hid_scale=hid_scale,
        dec_scale=dec_scale,
        rec_weight_t=np.ascontiguousarray(q(p["rec_weight"], hid_scale).T) if architecture.recurrent else None,
        th_decay=th_decay,
        th_weight=q(p["th_weight"], hid_scale) if architecture.iwta else th_weight,
    )
