"""Post-training quantisation of a spiking actor into an :class:`IntegerPolicy` (docs/export.md, integer datapath).

Formats (``H`` = state headroom bits, ``D`` = decay bits)::

    raw observation   int32 Q16.16 (obs * 2^16), what the integer policy receives
    normalised obs    z = sat(rhaz((obs_q - mean_q) * norm_mult, norm_shift), +-clip * 2^12)   (Q12)
    encoder           mu_q = round(mu * 2^12) int16, rho_q = round(2^12 / |sigma|) uint16, Gaussian LUT Q15
    LIF layer         Wq = sat(round(W * k_i), +-127) int8 with k_i = 127 / max_j |W_ij| per output row
                      (the output layer's row includes its intra-layer recurrent weights), bias and threshold
                      round(b * k_i * 2^H), round(theta * k_i * 2^H) int32, decays round(a * 2^D)
    readout           per action row scale k_d, int8 weights, int32 bias, decay round(lambda * 2^D)
    action            z12 = rhaz(V * out_mult_d, OUT_SHIFT) (Q12 pre-activation), a = tanh LUT -> Q15

The scales ``k`` are folded into bias and threshold, so spiking layers need no requantisation; the only
real-valued gain of the datapath is ``out_mult_d``, computed here offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from agents.actors import ILCSAN, ActorNetwork, PopSAN, SpikingActor
from agents.export.network import IntegerNetwork
from envs.errors import UserError
from envs.normalization import ObservationStats
from neurons import LIFParameters
from neurons.encoders import ENCODER_THRESHOLD
from neurons.readout import DECODE_CODES  # noqa: F401  (the generated C's DECODE macro; re-exported)

HEADROOM_BITS = 6  # H: states carry 2^H sub-LSB resolution below one weight step
DECAY_BITS = 12  # D: decays are round(a * 2^D), applied with round-toward-zero
OBS_FRACTION_BITS = 16  # raw observations enter as int32 Q16.16
Z_FRACTION_BITS = 12  # normalised observations and tanh inputs are Q12
ACTION_BITS = 15  # actions leave as Q15 in [-1, 1]
OUT_SHIFT = 20  # shift of the one real-valued gain (readout voltage -> Q12 pre-activation)
NORM_MULT_LIMIT = 1 << 30  # per-dimension normalisation multipliers are chosen just below this
WEIGHT_MAX = 127
GAUSS_LUT_STEP_BITS = 5  # Gaussian LUT step 1/32 of a standard deviation, 129 entries over [0, 4]
GAUSS_LUT_SIZE = 129
TANH_LUT_STEP_BITS = 5  # tanh LUT step 1/32 over [0, 8], 257 entries
TANH_LUT_SIZE = 257
CONSTANT_BITS = 16  # per-neuron bias and threshold are stored as int16 mantissas << a per-layer shift
ENCODER_THRESHOLD_Q15 = round(ENCODER_THRESHOLD * 32767)
EXPORTABLE_ACTORS = ("popsan", "ilcsan", "noisysan")


class ExportError(UserError, ValueError):
    """The actor (or its run) cannot be exported to integer arithmetic; the message says why."""


def gaussian_lut() -> np.ndarray:
    """``L[k] = round(32767 exp(-(k/32)^2 / 2))`` for ``k = 0..128`` (uint16)."""
    u = np.arange(GAUSS_LUT_SIZE) / (1 << GAUSS_LUT_STEP_BITS)
    return np.round(32767 * np.exp(-0.5 * u * u)).astype(np.uint16)


def tanh_lut() -> np.ndarray:
    """``T[k] = round(32767 tanh(k/32))`` for ``k = 0..256`` (int16)."""
    u = np.arange(TANH_LUT_SIZE) / (1 << TANH_LUT_STEP_BITS)
    return np.round(32767 * np.tanh(u)).astype(np.int16)


@dataclass
class IntegerLayer:
    """One Linear + CUBA-LIF layer in integers.

    Attributes:
        name: layer name (``hidden1``, ..., ``output``).
        weight_t: int8 ``[F_in, F_out]``, transposed so one input spike adds one contiguous row.
        bias: int64 ``[F_out]`` (int32 range), added to the current every step; a multiple of ``2^bias_shift``.
        threshold: int64 ``[F_out]``; a neuron spikes when ``V > threshold``; a multiple of ``2^threshold_shift``.
        scale: float ``[F_out]``, the row scales ``k`` (for dequantisation and reports only).
        current_decay, voltage_decay: ``round(a * 2^D)``.
        blocks_t: int8 ``[G, P, P]`` intra-layer weights, ``blocks_t[g, j, i]`` from neuron ``j`` to ``i`` of
            group ``g`` (same row scales as ``weight_t``), or ``None``.
    """

    name: str
    weight_t: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    scale: np.ndarray
    current_decay: int
    voltage_decay: int
    blocks_t: np.ndarray | None = None
    bias_shift: int = 0
    threshold_shift: int = 0

    @property
    def fan_in(self) -> int:
        return self.weight_t.shape[0]

    @property
    def fan_out(self) -> int:
        return self.weight_t.shape[1]


@dataclass
class IntegerReadout:
    """Non-spiking readout of ``M`` output populations of ``P`` neurons each.

    ``V_t = rtz(decay * V_{t-1}, D) + sum_k weight[d, k] s_t[d*P + k] * 2^H + bias[d]``; decoded by ``mode``
    (``last``, ``mean`` = sum over t, ``max-abs``), then ``z12 = rhaz(V * out_mult[d], OUT_SHIFT)``.
    """

    weight: np.ndarray  # int8 [M, P]
    bias: np.ndarray  # int32 [M]
    scale: np.ndarray  # float [M]
    decay: int
    mode: str
    out_mult: np.ndarray  # int64 [M] (fits int32)


@dataclass
class IntegerPolicy(IntegerNetwork):
    """Everything the integer executors (NumPy reference, C) need; saved as ``.npz`` + JSON spec."""

    npz_name: ClassVar[str] = "policy.npz"

    actor: str
    obs_dim: int
    act_dim: int
    encoder_pop: int
    decoder_pop: int
    timesteps: int
    headroom_bits: int
    norm_mean: np.ndarray  # int32 [N], Q16
    norm_mult: np.ndarray  # int64 [N] (< 2^30)
    norm_shift: np.ndarray  # int32 [N]
    clip: int  # Q12 saturation of the normalised observation
    encoder_mean: np.ndarray  # int16 [N*P], Q12
    encoder_rho: np.ndarray  # uint16 [N*P], 2^12 / sigma
    layers: list[IntegerLayer]
    readout: IntegerReadout
    action_low: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float [M], env action bounds
    action_high: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def layer_names(self) -> list[str]:
        return ["encoder", *[layer.name for layer in self.layers]]

    @property
    def layer_widths(self) -> list[int]:
        return [self.obs_dim * self.encoder_pop, *[layer.fan_out for layer in self.layers]]

    # ---- persistence ----------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """All integer arrays by name (the ``.npz`` content)."""
        out = {
            "norm_mean": self.norm_mean,
            "norm_mult": self.norm_mult,
            "norm_shift": self.norm_shift,
            "encoder_mean": self.encoder_mean,
            "encoder_rho": self.encoder_rho,
            "gauss_lut": gaussian_lut(),
            "tanh_lut": tanh_lut(),
            "readout_weight": self.readout.weight,
            "readout_bias": self.readout.bias,
            "readout_scale": self.readout.scale,
            "readout_out_mult": self.readout.out_mult,
            "action_low": self.action_low,
            "action_high": self.action_high,
        }
        for index, layer in enumerate(self.layers):
            out[f"layer{index}_weight_t"] = layer.weight_t
            out[f"layer{index}_bias"] = layer.bias
            out[f"layer{index}_threshold"] = layer.threshold
            out[f"layer{index}_scale"] = layer.scale
            if layer.blocks_t is not None:
                out[f"layer{index}_blocks_t"] = layer.blocks_t
        return out

    def spec(self) -> dict:
        """JSON-able description of the formats and scalar constants."""
        return {
            "actor": self.actor,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "encoder_pop": self.encoder_pop,
            "decoder_pop": self.decoder_pop,
            "timesteps": self.timesteps,
            "headroom_bits": self.headroom_bits,
            "decay_bits": DECAY_BITS,
            "obs_format": f"int32 Q{32 - OBS_FRACTION_BITS}.{OBS_FRACTION_BITS}",
            "action_format": f"int16 Q{ACTION_BITS} (tanh output in [-1, 1], mapped linearly to [low, high])",
            "clip_q12": self.clip,
            "encoder_threshold_q15": ENCODER_THRESHOLD_Q15,
            "out_shift": OUT_SHIFT,
            "layers": [
                {
                    "name": layer.name,
                    "fan_in": layer.fan_in,
                    "fan_out": layer.fan_out,
                    "current_decay_q": layer.current_decay,
                    "voltage_decay_q": layer.voltage_decay,
                    "intra_layer": layer.blocks_t is not None,
                    "bias_shift": layer.bias_shift,
                    "threshold_shift": layer.threshold_shift,
                }
                for layer in self.layers
            ],
            "readout": {"decay_q": self.readout.decay, "mode": self.readout.mode},
        }

    @classmethod
    def from_npz(cls, spec: dict, data) -> IntegerPolicy:
        layers = [
            IntegerLayer(
                name=info["name"],
                weight_t=data[f"layer{i}_weight_t"],
                bias=data[f"layer{i}_bias"],
                threshold=data[f"layer{i}_threshold"],
                scale=data[f"layer{i}_scale"],
                current_decay=info["current_decay_q"],
                voltage_decay=info["voltage_decay_q"],
                blocks_t=data[f"layer{i}_blocks_t"] if info["intra_layer"] else None,
                bias_shift=info["bias_shift"],
                threshold_shift=info["threshold_shift"],
            )
            for i, info in enumerate(spec["layers"])
        ]
        readout = IntegerReadout(
            data["readout_weight"],
            data["readout_bias"],
            data["readout_scale"],
            spec["readout"]["decay_q"],
            spec["readout"]["mode"],
            data["readout_out_mult"],
        )
        scalars = {name: spec[name] for name in _SPEC_FIELDS}
        arrays = {name: data[name] for name in _ARRAY_FIELDS}
        return cls(**scalars, **arrays, clip=spec["clip_q12"], layers=layers, readout=readout)

    # ---- the pipeline's operations (agents.export.network) ----------------------------------------
    @property
    def out_fan(self) -> int:
        """Targets of one output spike: its readout row plus its intra-layer row (ILC-SAN)."""
        last = self.layers[-1]
        return 1 + (0 if last.blocks_t is None else last.blocks_t.shape[2])

    def worst_case_sops(self) -> int:
        """SOPs per action if every neuron spiked at every step (the WCET bound)."""
        widths = self.layer_widths
        per_step = sum(width * layer.fan_out for width, layer in zip(widths, self.layers))
        return self.timesteps * (per_step + widths[-1] * self.out_fan)

    def check_overflow(self, state_bits: int = 32) -> list:
        from agents.export.overflow import check_overflow

        return check_overflow(self, state_bits)

    def reference(self):
        from agents.export.reference import IntegerReference

        return IntegerReference(self)

    def generate_c(self, prefix: str):
        from agents.export.c_codegen import generate_c

        return generate_c(self, prefix)

    def c_executor(self, library: Path, prefix: str):
        from agents.export.c_build import CPolicy

        return CPolicy(library, prefix, self.obs_dim, self.act_dim, len(self.layers) + 1)


_SPEC_FIELDS = ("actor", "obs_dim", "act_dim", "encoder_pop", "decoder_pop", "timesteps", "headroom_bits")
_ARRAY_FIELDS = ("norm_mean", "norm_mult", "norm_shift", "encoder_mean", "encoder_rho", "action_low", "action_high")


# ---- quantisation primitives (also used by quantisation-aware fine-tuning) ----------------------
def row_scales(weight: np.ndarray, weight_max: int = WEIGHT_MAX) -> np.ndarray:
    """Per-row symmetric scales ``k_i = weight_max / max_j |W_ij|`` (``weight_max`` for an all-zero row); 127 is
    int8, 32767 int16."""
    peak = np.abs(weight).max(axis=1) if weight.shape[1] else np.zeros(weight.shape[0])
    return np.where(peak > 0, weight_max / np.where(peak > 0, peak, 1.0), float(weight_max))


def quantize_weights(weight: np.ndarray, scale: np.ndarray, weight_max: int = WEIGHT_MAX) -> np.ndarray:
    """``sat(round(W * k_row), +-weight_max)`` as int8 (``weight_max`` 127) or int16 (32767); ``weight`` is
    ``[rows, cols]``, ``scale`` ``[rows]``."""
    dtype = np.int8 if weight_max <= 127 else np.int16
    return np.clip(np.round(weight * scale[:, None]), -weight_max, weight_max).astype(dtype)


def quantize_state_constant(value: np.ndarray | float, scale: np.ndarray, headroom_bits: int) -> np.ndarray:
    """Bias or threshold in state units: ``round(value * k * 2^H)`` (int64; the overflow check bounds it)."""
    return np.round(np.asarray(value, dtype=np.float64) * scale * (1 << headroom_bits)).astype(np.int64)


def compact_constants(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Round ``values`` (int64) to ``mantissa * 2^shift`` with int16 mantissas and the smallest such shift.

    Bias and threshold live in state units (``2^H`` below one weight step), so a shift of a few bits costs
    a fraction of a weight step and halves their flash.
    """
    peak = int(np.abs(values).max(initial=0))
    shift = 0
    while peak >> shift > 2 ** (CONSTANT_BITS - 1) - 1:
        shift += 1
    if shift == 0:
        return values.astype(np.int64), 0
    half = 1 << (shift - 1)
    mantissa = np.where(values < 0, -((-values + half) >> shift), (values + half) >> shift)
    mantissa = np.clip(mantissa, -(2 ** (CONSTANT_BITS - 1) - 1), 2 ** (CONSTANT_BITS - 1) - 1)
    return mantissa.astype(np.int64) << shift, shift


def quantize_decay(decay: float) -> int:
    """``round(decay * 2^D)``."""
    return int(round(decay * (1 << DECAY_BITS)))


def normalisation_constants(stats: ObservationStats | None, obs_dim: int) -> tuple[np.ndarray, ...]:
    """``(mean_q16, mult, shift, clip_q12)`` so that ``rhaz((obs_q16 - mean) * mult, shift)`` is the Q12 z-score.

    ``mult`` is the largest multiplier below 2^30 for ``2^(shift - 4) / std``; without statistics the
    policy normalises with mean 0, std 1 and clip 3 (actors trained on raw observations).
    """
    if stats is None:
        mean, std, clip = np.zeros(obs_dim), np.ones(obs_dim), 3.0
    else:
        mean = np.asarray(stats.mean, np.float64)
        std = np.sqrt(np.asarray(stats.var, np.float64) + stats.epsilon)
        clip = stats.clip
    if mean.shape != (obs_dim,):
        raise ExportError(f"observation statistics have shape {mean.shape}, the actor expects ({obs_dim},)")
    if clip * (1 << Z_FRACTION_BITS) >= 1 << 15:
        raise ExportError(f"observation clip {clip} does not fit the Q12 int16 normalised format (must be < 8)")
    mean_q = np.round(mean * (1 << OBS_FRACTION_BITS))
    if np.abs(mean_q).max(initial=0) >= 2**31:
        raise ExportError("observation mean does not fit int32 Q16.16 (|mean| >= 32768)")
    # 2^(shift-4) / std < 2^30  <=>  shift < 34 + log2(std)
    shift = np.clip(np.floor(34 + np.log2(std)).astype(np.int64), 1, 62)
    mult = np.round(np.ldexp(1.0, shift - (OBS_FRACTION_BITS - Z_FRACTION_BITS)) / std)
    too_big = mult >= NORM_MULT_LIMIT
    shift, mult = np.where(too_big, shift - 1, shift), np.where(too_big, np.round(mult / 2), mult)
    return (
        mean_q.astype(np.int32),
        mult.astype(np.int64),
        shift.astype(np.int32),
        int(round(clip * (1 << Z_FRACTION_BITS))),
    )


def layer_neuron_params(actor: SpikingActor) -> list[LIFParameters]:
    """The CUBA-LIF constants of each weight layer (one shared set in PopSAN/ILC-SAN)."""
    return [actor.neurons.params] * len(actor.layers)


def _check_exportable(actor: ActorNetwork) -> SpikingActor:
    if not isinstance(actor, SpikingActor):
        raise ExportError(
            f"only spiking actors export to integer arithmetic ({', '.join(EXPORTABLE_ACTORS)}); "
            f"this run's actor is {type(actor).__name__} — a dense float MLP has no spike-driven integer form"
        )
    if not isinstance(actor, (PopSAN, ILCSAN)):
        raise ExportError(
            f"no integer mapping for actor {type(actor).__name__}; exportable: {', '.join(EXPORTABLE_ACTORS)}"
        )
    if actor.encoder.spike_mode != "deterministic":
        raise ExportError(
            f"encoder spike mode {actor.encoder.spike_mode!r} is random; only the deterministic (regular) "
            "encoder has a bit-exact integer form"
        )
    return actor


def _encoder_constants(actor: SpikingActor) -> tuple[np.ndarray, np.ndarray]:
    mean = actor.encoder.mean.detach().double().numpy().reshape(-1)
    sigma = np.abs(actor.encoder.std.detach().double().numpy().reshape(-1))
    mean_q = np.round(mean * (1 << Z_FRACTION_BITS))
    if np.abs(mean_q).max() > 2**15 - 1:
        raise ExportError(f"encoder centre {np.abs(mean).max():.3f} is outside the Q12 int16 range (+-8)")
    rho = np.round((1 << Z_FRACTION_BITS) / np.maximum(sigma, 1e-12))
    if rho.max() >= 1 << 16:
        raise ExportError(
            f"encoder width {sigma.min():.4f} is below 1/16 of a standard deviation; the uint16 inverse-width "
            "format cannot hold it"
        )
    return mean_q.astype(np.int16), rho.astype(np.uint16)


def quantize_actor(
    actor: ActorNetwork,
    obs_stats: ObservationStats | None = None,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    headroom_bits: int = HEADROOM_BITS,
) -> IntegerPolicy:
    """Quantise a PopSAN or ILC-SAN actor (a NoisySAN with noise off dispatches as ILC-SAN).

    Args:
        actor: the trained float actor network.
        obs_stats: observation normalisation saved with the model (``None``: raw observations, clip 3).
        action_low, action_high: env action bounds ``[M]`` (default ``[-1, 1]``), recorded for the caller.
        headroom_bits: ``H``.

    Raises:
        ExportError: the actor is not spiking, uses a random encoder, or a constant does not fit its format.
    """
    spiking = _check_exportable(actor)
    act_dim = spiking.act_dim
    with torch.no_grad():
        norm_mean, norm_mult, norm_shift, clip = normalisation_constants(obs_stats, spiking.obs_dim)
        encoder_mean, encoder_rho = _encoder_constants(spiking)
        layers = []
        params = layer_neuron_params(spiking)
        for index, (module, neuron) in enumerate(zip(spiking.layers, params)):
            bias, blocks = spiking._bias_and_blocks(index)
            weight = module.weight.double().numpy()
            incoming = weight
            if blocks is not None:  # the intra-layer row of neuron g*P+i is blocks[g, i, :]
                groups, pop, _ = blocks.shape
                recurrent = blocks.double().numpy().reshape(groups * pop, pop)
                incoming = np.concatenate([weight, recurrent], axis=1)
            scale = row_scales(incoming)
            blocks_t = None
            if blocks is not None:
                blocks_t = quantize_weights(recurrent, scale).reshape(groups, pop, pop).transpose(0, 2, 1).copy()
            bias_q, bias_shift = compact_constants(quantize_state_constant(bias.double().numpy(), scale, headroom_bits))
            threshold_q, threshold_shift = compact_constants(
                quantize_state_constant(neuron.threshold, scale, headroom_bits)
            )
            layers.append(
                IntegerLayer(
                    name=spiking.layer_names[index + 1],
                    weight_t=np.ascontiguousarray(quantize_weights(weight, scale).T),
                    bias=bias_q,
                    threshold=threshold_q,
                    bias_shift=bias_shift,
                    threshold_shift=threshold_shift,
                    scale=scale,
                    current_decay=quantize_decay(neuron.current_decay),
                    voltage_decay=quantize_decay(neuron.voltage_decay),
                    blocks_t=blocks_t,
                )
            )
        readout = _quantize_readout(spiking, headroom_bits)
    low = np.full(act_dim, -1.0) if action_low is None else np.asarray(action_low, np.float64)
    high = np.full(act_dim, 1.0) if action_high is None else np.asarray(action_high, np.float64)
    return IntegerPolicy(
        actor="popsan" if isinstance(spiking, PopSAN) else "ilcsan",
        obs_dim=spiking.obs_dim,
        act_dim=act_dim,
        encoder_pop=spiking.encoder.pop_size,
        decoder_pop=spiking.decoder_pop,
        timesteps=spiking.timesteps,
        headroom_bits=headroom_bits,
        norm_mean=norm_mean,
        norm_mult=norm_mult,
        norm_shift=norm_shift,
        clip=clip,
        encoder_mean=encoder_mean,
        encoder_rho=encoder_rho,
        layers=layers,
        readout=readout,
        action_low=low,
        action_high=high,
    )


def _quantize_readout(actor: SpikingActor, headroom_bits: int) -> IntegerReadout:
    """PopSAN's rate decoder ``w . mean_t(s) + b`` is an integrating readout (decay 1, bias every step)
    decoded at the last step and divided by ``T``; ILC-SAN's readout maps directly."""
    synapses = actor._readout_synapses()
    weight = synapses.weight.detach().double().numpy()
    bias = synapses.bias.detach().double().numpy()
    if isinstance(actor, PopSAN):
        decay, mode, divisor = 1.0, "last", float(actor.timesteps)
    else:
        decay, mode = actor.readout.decay, actor.readout.mode
        divisor = float(actor.timesteps) if mode == "mean" else 1.0
    scale = row_scales(weight)
    out_mult = np.round(math.ldexp(1.0, Z_FRACTION_BITS + OUT_SHIFT) / (scale * (1 << headroom_bits) * divisor)).astype(
        np.int64
    )
    return IntegerReadout(
        weight=quantize_weights(weight, scale),
        bias=quantize_state_constant(bias, scale, headroom_bits),
        scale=scale,
        decay=quantize_decay(decay),
        mode=mode,
        out_mult=out_mult,
    )


def observations_to_q16(obs: np.ndarray) -> np.ndarray:
    """Float observations ``[..., N]`` -> int32 Q16.16 (saturating), the integer policy's input.

    Raises :class:`ExportError` naming the first NaN's index: NaN has no integer value (it used to become
    INT32_MIN); infinities saturate like any out-of-range value."""
    values = np.asarray(obs, np.float64)
    nan = np.isnan(values)
    if nan.any():
        index = tuple(int(i) for i in np.argwhere(nan)[0])
        raise ExportError(f"observation is NaN at index {index}: the integer policy takes finite observations")
    scaled = np.round(values * (1 << OBS_FRACTION_BITS))
    return np.clip(scaled, -(2**31), 2**31 - 1).astype(np.int32)


def actions_from_q15(action_q: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Q15 tanh outputs ``[..., M]`` -> env actions in ``[low, high]`` (SB3's unscaling)."""
    unit = np.asarray(action_q, np.float64) / 32767.0
    return low + 0.5 * (unit + 1.0) * (high - low)
