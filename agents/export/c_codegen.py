"""Generate a self-contained C99 source + header from an :class:`IntegerPolicy`.

The generated code has ``static const`` weight arrays (flash), one statically allocated workspace (RAM), no
``malloc``, no floating point (it compiles with ``gcc -std=c99 -Wall -Wextra -Wconversion -Werror
-mgeneral-regs-only``) and no undefined behaviour: right shifts of negative values go through sign-magnitude
helpers, products that can exceed 32 bits are computed in ``int64_t``, and :mod:`agents.export.overflow`
proves at export time that every ``int32_t`` state stays in range. API (``<prefix>`` defaults to
``spikerl_policy``)::

    uint32_t <prefix>_step(const int32_t obs_q[OBS_DIM], int16_t action_q[ACT_DIM]);
        obs_q: raw observation in Q16.16; action_q: Q15 tanh output; returns saturated observation dims
    const <prefix>_stats_t *<prefix>_last_stats(void);   /* spikes per layer, SOPs, saturations */

The semantics are those of :mod:`agents.export.reference`, step for step. Two speed-ups keep them exact: a decay
``a = odd·2^k`` whose product with the proven state bound fits 32 bits is applied as ``x * odd / 2^(12-k)`` (C division
truncates toward zero, like ``rtz``), and on cores with the Arm DSP extension (``__ARM_FEATURE_SIMD32``, e.g.
Cortex-M4/M7/M33) the synaptic sums of a layer whose every output's absolute weights sum below 2^15 are accumulated
as packed int16 pairs (``SXTB16`` + ``SADD16``, four weights per word); ``-DSPIKERL_NO_SIMD`` or any other core
takes the portable int32 loop.

The C text lives in ``agents/export/templates`` (package data): Jinja2 templates for the parts that depend on the
network (``policy.h.j2``, ``policy.c.j2``) and plain C fragments for the fixed runtime (``rtz_mul.c``, ``rhaz.c``,
``lif_layer.c``), inlined verbatim so each export stays one self-contained ``.c`` and ``.h``. Python only computes the
values: constants, C initialisers of the arrays and the decay expressions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import jinja2
import numpy as np

from agents.export.overflow import check_overflow
from agents.export.quantization import (
    DECAY_BITS,
    DECODE_CODES,
    ENCODER_THRESHOLD_Q15,
    GAUSS_LUT_SIZE,
    GAUSS_LUT_STEP_BITS,
    OUT_SHIFT,
    TANH_LUT_SIZE,
    TANH_LUT_STEP_BITS,
    Z_FRACTION_BITS,
    IntegerLayer,
    IntegerPolicy,
    gaussian_lut,
    tanh_lut,
)

DEFAULT_PREFIX = "spikerl_policy"
_VALUES_PER_LINE = 16
TEMPLATES = Path(__file__).with_name("templates")

# one environment for every generator; the C twins of :func:`agents.export.reference.rtz` and
# :func:`~agents.export.reference.rhaz` (sign-magnitude, so no right shift of a negative value) are the shared
# fragments ``rtz_mul.c`` and ``rhaz.c`` (the including source defines DECAY_BITS)
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(template: str, **values: object) -> str:
    """Render ``templates/<template>`` with ``values`` (an undefined name raises)."""
    return _ENVIRONMENT.get_template(template).render(**values)


@dataclass
class GeneratedC:
    """The generated files: ``header`` (``<prefix>.h``) and ``source`` (``<prefix>.c``)."""

    prefix: str
    header: str
    source: str
    model_hash: str


def model_hash(policy: IntegerPolicy) -> str:
    """SHA-256 (first 16 hex digits) over every integer array and the spec, in a fixed order."""
    digest = hashlib.sha256(repr(sorted(policy.spec().items())).encode())
    for name, array in sorted(policy.arrays().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class CInitialiser:
    """A C array initialiser: its length and the comma-separated values, 16 per line (one dummy 0 when empty);
    the ``c_array`` macro of ``templates/c_array.j2`` wraps it into ``static const <type> <name>[size] = {...};``."""

    size: int
    body: str


def c_initialiser(values: np.ndarray) -> CInitialiser:
    """The initialiser of the flattened integer ``values``."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i : i + _VALUES_PER_LINE]) for i in range(0, len(flat), _VALUES_PER_LINE)]
    return CInitialiser(max(len(flat), 1), ",\n    ".join(lines) if lines else "0")


def packs_int16(layer: IntegerLayer) -> bool:
    """Whether the layer's synaptic sums fit packed int16 lanes: ``F_out`` a multiple of 4 (word-aligned rows of
    4 weights) and, for every output, the sum of its absolute feed-forward weights below 2^15, so no partial sum
    of any spike pattern can leave int16 (the intra-layer blocks are added in int32 afterwards)."""
    column_bound = np.abs(layer.weight_t.astype(np.int64)).sum(axis=0)
    return layer.fan_out % 4 == 0 and int(column_bound.max(initial=0)) < 2**15


def decay_expression(state: str, decay: int, bound: int) -> str:
    """C expression of ``rtz(state * decay / 2^DECAY_BITS)``. When ``decay = a·2^k`` and ``|state| <= bound`` keeps
    ``state·a`` inside int32, it is the 32-bit ``state * a / 2^(DECAY_BITS - k)`` (C division truncates toward
    zero, the same rounding); otherwise the 64-bit :c:func:`rtz_mul`."""
    shift = (decay & -decay).bit_length() - 1 if decay else 0
    odd, divisor = decay >> shift, DECAY_BITS - shift
    if decay == 0:
        return "0"
    if divisor <= 0:
        return f"{state} * {decay >> DECAY_BITS}" if decay == 1 << DECAY_BITS else f"rtz_mul({state}, {decay})"
    if bound * odd < 2**31:
        return f"{state} * {odd} / {1 << divisor}" if odd > 1 else f"{state} / {1 << divisor}"
    return f"rtz_mul({state}, {decay})"


def check_prefix(prefix: str) -> None:
    """Raise ``ValueError`` unless ``prefix`` is a C identifier."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise ValueError(f"C prefix must be a C identifier, got {prefix!r}")


def _layer_values(layer: IntegerLayer, fan_in: int, current_bound: int, voltage_bound: int) -> SimpleNamespace:
    """What ``policy.c.j2`` needs of one layer: its arrays, sizes and decay expressions. Bias and threshold are
    int16 mantissas times a power of two (``*_unit``)."""
    groups, pop = (0, 0) if layer.blocks_t is None else layer.blocks_t.shape[:2]
    return SimpleNamespace(
        name=layer.name,
        fan_in=fan_in,
        fan_out=layer.fan_out,
        weight_t=c_initialiser(layer.weight_t),
        bias=c_initialiser(layer.bias >> layer.bias_shift),
        threshold=c_initialiser(layer.threshold >> layer.threshold_shift),
        blocks_t=None if layer.blocks_t is None else c_initialiser(layer.blocks_t),
        groups=groups,
        pop=pop,
        packed=int(packs_int16(layer)),
        bias_unit=1 << layer.bias_shift,
        threshold_unit=1 << layer.threshold_shift,
        current=decay_expression("cur[f]", layer.current_decay, current_bound),
        voltage=decay_expression("vol[f]", layer.voltage_decay, voltage_bound),
    )


def generate_c(policy: IntegerPolicy, prefix: str = DEFAULT_PREFIX) -> GeneratedC:
    """Header and source for ``policy``; deterministic (same policy -> same text)."""
    check_prefix(prefix)
    digest = model_hash(policy)
    widths = policy.layer_widths
    bounds = {bound.layer: bound for bound in check_overflow(policy)}
    layers = [
        _layer_values(layer, fan_in, bounds[layer.name].current_bound, bounds[layer.name].voltage_bound)
        for layer, fan_in in zip(policy.layers, widths)
    ]
    readout = policy.readout
    readout_decay = "ws.ro_v[d]" if readout.decay == 1 << DECAY_BITS else f"rtz_mul(ws.ro_v[d], {readout.decay})"
    arrays = {
        "norm_mean": policy.norm_mean,
        "norm_mult": policy.norm_mult,
        "norm_shift": policy.norm_shift,
        "encoder_mean": policy.encoder_mean,
        "encoder_rho": policy.encoder_rho,
        "gauss_lut": gaussian_lut(),
        "tanh_lut": tanh_lut(),
        "readout_weight": readout.weight,
        "readout_bias": readout.bias,
        "readout_mult": readout.out_mult,
    }
    values = {
        "prefix": prefix,
        "upper": prefix.upper(),
        "digest": digest,
        "policy": policy,
        "widths": widths,
        "layers": layers,
        "arrays": {name: c_initialiser(array) for name, array in arrays.items()},
        "headroom": 1 << policy.headroom_bits,
        "decode": DECODE_CODES[readout.mode],
        "readout_decay": readout_decay,
        "uses_rtz_mul": any("rtz_mul(" in layer.current + layer.voltage for layer in layers)
        or "rtz_mul(" in readout_decay,
        "out_fan": policy.out_fan,
        "DECAY_BITS": DECAY_BITS,
        "OUT_SHIFT": OUT_SHIFT,
        "ENC_THRESHOLD": ENCODER_THRESHOLD_Q15,
        "GAUSS_LAST": GAUSS_LUT_SIZE - 1,
        "GAUSS_POS_SHIFT": 24 - GAUSS_LUT_STEP_BITS - 8,
        "TANH_LAST": TANH_LUT_SIZE - 1,
        "TANH_STEP": Z_FRACTION_BITS - TANH_LUT_STEP_BITS,
    }
    return GeneratedC(prefix, render("policy.h.j2", **values), render("policy.c.j2", **values), digest)
