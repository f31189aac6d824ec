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
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

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

# C twins of :func:`agents.export.reference.rtz` and :func:`~agents.export.reference.rhaz` (sign-magnitude, so no
# right shift of a negative value); the including source defines DECAY_BITS
C_RTZ_MUL = """/* sign(x) * (|x * a| >> DECAY_BITS): decay multiply rounding toward zero, product in 64 bits */
static int32_t rtz_mul(int32_t x, int32_t a) {
    int64_t p = (int64_t)x * (int64_t)a;
    return (int32_t)(p < 0 ? -((-p) >> DECAY_BITS) : (p >> DECAY_BITS));
}
"""
C_RHAZ = """
/* sign(x) * ((|x| + 2^(s-1)) >> s), 1 <= s <= 62, |x| < 2^62 */
static int64_t rhaz(int64_t x, unsigned s) {
    int64_t half = (int64_t)1 << (s - 1u);
    return x < 0 ? -((-x + half) >> s) : ((x + half) >> s);
}
"""
C_ROUNDING_HELPERS = C_RTZ_MUL + C_RHAZ


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


def c_array(ctype: str, name: str, values: np.ndarray, attributes: str = "") -> str:
    """``static const <ctype> <name>[n] <attributes> = {...};`` for the flattened ``values`` (one dummy 0 when
    empty)."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i : i + _VALUES_PER_LINE]) for i in range(0, len(flat), _VALUES_PER_LINE)]
    body = ",\n    ".join(lines) if lines else "0"
    return f"static const {ctype} {name}[{max(len(flat), 1)}]{attributes} = {{\n    {body}\n}};\n"


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


def _update_function(index: int, layer: IntegerLayer, current_bound: int, voltage_bound: int) -> str:
    """``update<index>``: the CUBA-LIF state update of one layer from the synaptic input in ``ws.acc``, with its
    decays, bias and threshold units as constants. Bias and threshold are int16 mantissas times a power of two."""
    current = decay_expression("cur[f]", layer.current_decay, current_bound)
    voltage = decay_expression("vol[f]", layer.voltage_decay, voltage_bound)
    return f"""/* layer {layer.name}: I = rtz(alpha I) + acc H + b, V = (s ? 0 : rtz(beta V)) + I, s = V > theta */
static uint32_t update{index}(int32_t *cur, int32_t *vol, uint8_t *s) {{
    uint32_t f, count = 0;
    for (f = 0; f < {layer.fan_out}u; ++f) {{
        int32_t i_new = {current} + ws.acc[f] * HEADROOM + B{index}[f] * {1 << layer.bias_shift};
        int32_t v_new = (s[f] ? 0 : {voltage}) + i_new;
        cur[f] = i_new;
        vol[f] = v_new;
        s[f] = (uint8_t)(v_new > TH{index}[f] * {1 << layer.threshold_shift});
        count += s[f];
    }}
    return count;
}}

"""


def generate_c(policy: IntegerPolicy, prefix: str = DEFAULT_PREFIX) -> GeneratedC:
    """Header and source for ``policy``; deterministic (same policy -> same text)."""
    check_prefix(prefix)
    upper = prefix.upper()
    n_layers = len(policy.layers)
    digest = model_hash(policy)
    widths = policy.layer_widths
    header = f"""/* {prefix}.h: integer-only spiking actor ({policy.actor}), generated by spikerl. Do not edit.
 * Model hash {digest}. Input: raw observation in Q16.16 (int32). Output: Q15 action (tanh output in [-1, 1],
 * mapped linearly onto the environment's action bounds). No floating point, no malloc; not reentrant
 * (one static workspace). */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#define {upper}_OBS_DIM {policy.obs_dim}
#define {upper}_ACT_DIM {policy.act_dim}
#define {upper}_TIMESTEPS {policy.timesteps}
#define {upper}_NUM_SPIKING_LAYERS {n_layers + 1}
#define {upper}_MODEL_HASH "{digest}"

typedef struct {{
    uint32_t saturated;                              /* observation dims clipped by the normalisation */
    uint32_t sops;                                   /* synaptic operations of the last step */
    uint32_t spikes[{upper}_NUM_SPIKING_LAYERS];     /* spikes per layer (encoder first) over all timesteps */
}} {prefix}_stats_t;

/* One control step from zero state: obs_q (Q16.16) -> action_q (Q15). Returns the saturated-dimension count. */
uint32_t {prefix}_step(const int32_t obs_q[{upper}_OBS_DIM], int16_t action_q[{upper}_ACT_DIM]);

/* Statistics of the most recent {prefix}_step call. */
const {prefix}_stats_t *{prefix}_last_stats(void);

#endif /* {upper}_H */
"""
    consts = [
        c_array("int32_t", "NORM_MEAN", policy.norm_mean),
        c_array("int32_t", "NORM_MULT", policy.norm_mult),
        c_array("uint8_t", "NORM_SHIFT", policy.norm_shift),
        c_array("int16_t", "ENC_MEAN", policy.encoder_mean),
        c_array("uint16_t", "ENC_RHO", policy.encoder_rho),
        c_array("uint16_t", "GAUSS_LUT", gaussian_lut()),
        c_array("int16_t", "TANH_LUT", tanh_lut()),
    ]
    for index, layer in enumerate(policy.layers):
        consts.append(c_array("int8_t", f"W{index}", layer.weight_t, " ALIGN4"))
        consts.append(c_array("int16_t", f"B{index}", layer.bias >> layer.bias_shift))
        consts.append(c_array("int16_t", f"TH{index}", layer.threshold >> layer.threshold_shift))
        if layer.blocks_t is not None:
            consts.append(c_array("int8_t", f"R{index}", layer.blocks_t))
    readout = policy.readout
    consts += [
        c_array("int8_t", "RO_W", readout.weight),
        c_array("int32_t", "RO_B", readout.bias),
        c_array("int32_t", "RO_MULT", readout.out_mult),
    ]
    state_fields = "\n".join(
        f"    int32_t i{k}[{w}];\n    int32_t v{k}[{w}];\n    uint8_t s{k}[{w}];"
        for k, w in enumerate(widths[1:], start=1)
    )
    max_width = max(widths[1:])
    bounds = {bound.layer: bound for bound in check_overflow(policy)}
    layer_calls, updates = [], []
    for index, layer in enumerate(policy.layers):
        k = index + 1
        blocks = "0" if layer.blocks_t is None else f"R{index}"
        groups, pop = (0, 0) if layer.blocks_t is None else layer.blocks_t.shape[:2]
        bound = bounds[layer.name]
        updates.append(_update_function(index, layer, bound.current_bound, bound.voltage_bound))
        layer_calls.append(
            f"        lif_layer(ws.s{k - 1}, {widths[index]}u, W{index}, {int(packs_int16(layer))}u, {blocks}, "
            f"{groups}u, {pop}u, t, ws.s{k}, {layer.fan_out}u);\n"
            f"        count[{k}] = update{index}(ws.i{k}, ws.v{k}, ws.s{k});\n"
            f"        ws.stats.sops += count[{k - 1}] * {layer.fan_out}u;"
        )
    last = policy.layers[-1]
    out_fan = 1 + (0 if last.blocks_t is None else last.blocks_t.shape[2])
    spike_counts = "\n".join(f"        ws.stats.spikes[{k}] += count[{k}];" for k in range(len(widths)))
    zeroed = ["enc", *(f"{kind}{k}" for k in range(1, len(widths)) for kind in "iv"), "ro_v", "ro_dec"]
    zeroed_bytes = [f"s{k}" for k in range(len(widths))]
    reset = "\n".join(
        [f"    for (k = 0; k < sizeof ws.{name} / sizeof ws.{name}[0]; ++k) ws.{name}[k] = 0;" for name in zeroed]
        + [f"    for (k = 0; k < sizeof ws.{name}; ++k) ws.{name}[k] = 0u;" for name in zeroed_bytes]
    )
    decode = DECODE_CODES[readout.mode]
    readout_decay = "ws.ro_v[d]" if readout.decay == 1 << DECAY_BITS else f"rtz_mul(ws.ro_v[d], {readout.decay})"
    source = f"""/* {prefix}.c: integer-only spiking actor ({policy.actor}), generated by spikerl. Do not edit.
 * Model hash {digest}. Semantics: agents/export/reference.py. Headroom H = {policy.headroom_bits} bits, decays
 * Q{DECAY_BITS} with round-toward-zero, output gain shift {OUT_SHIFT}. Every int32 state bound was proven at export. */
#include "{prefix}.h"

#define OBS_DIM {policy.obs_dim}
#define ACT_DIM {policy.act_dim}
#define ENC_POP {policy.encoder_pop}
#define DEC_POP {policy.decoder_pop}
#define N_ENC {widths[0]}
#define TIMESTEPS {policy.timesteps}
#define HEADROOM {1 << policy.headroom_bits}
#define DECAY_BITS {DECAY_BITS}
#define CLIP_Q12 {policy.clip}
#define ENC_THRESHOLD {ENCODER_THRESHOLD_Q15}
#define GAUSS_LAST {GAUSS_LUT_SIZE - 1}u
#define GAUSS_POS_SHIFT {24 - GAUSS_LUT_STEP_BITS - 8}
#define TANH_LAST {TANH_LUT_SIZE - 1}
#define TANH_STEP {Z_FRACTION_BITS - TANH_LUT_STEP_BITS}
#define OUT_SHIFT {OUT_SHIFT}
#define DECODE {decode} /* 0 last, 1 sum over t (mean; 1/T folded into RO_MULT), 2 max-abs */

/* Packed int16 synaptic sums (two lanes per word, SXTB16 + SADD16) on cores with the DSP extension, for the layers
 * whose proven column bound fits int16; -DSPIKERL_NO_SIMD, or any other core, takes the portable int32 loop. Both
 * give the same sums. */
#if defined(__ARM_FEATURE_SIMD32) && !defined(SPIKERL_NO_SIMD)
#define SPIKERL_SIMD 1
#include <arm_acle.h>
#else
#define SPIKERL_SIMD 0
#endif
#if defined(__GNUC__)
#define ALIGN4 __attribute__((aligned(4)))
#else
#define ALIGN4
#endif

{"".join(consts)}
static struct {{
    uint16_t act[N_ENC];
    int32_t enc[N_ENC];
    uint8_t s0[N_ENC];
{state_fields}
    int32_t acc[{max_width}];
    int32_t ro_v[ACT_DIM];
    int32_t ro_dec[ACT_DIM];
    {prefix}_stats_t stats;
}} ws;

{C_RTZ_MUL if "rtz_mul(" in "".join(updates) + readout_decay else ""}{C_RHAZ}
#if SPIKERL_SIMD
/* Packed sums in the first half of ws.acc: pairs[2k] holds the int16 sums of outputs (4k, 4k+2), pairs[2k+1] those
 * of (4k+1, 4k+3); unpacked in place into int32 ws.acc[0..n_out), from the last group down. */
static void accumulate_packed(const uint8_t *in, uint32_t n_in, const int8_t *w_t, uint32_t n_out) {{
    uint32_t *pairs = (uint32_t *)ws.acc;
    uint32_t j, k, words = n_out / 4u;
    for (k = 0; k < 2u * words; ++k) pairs[k] = 0u;
    for (j = 0; j < n_in; ++j) {{
        if (in[j]) {{
            const int8_t *row = w_t + j * n_out;
            for (k = 0; k < words; ++k) {{
                uint32_t w;
                __builtin_memcpy(&w, row + 4u * k, 4u);
                pairs[2u * k] = (uint32_t)__sadd16((int16x2_t)pairs[2u * k], __sxtb16((int8x4_t)w));
                pairs[2u * k + 1u] =
                    (uint32_t)__sadd16((int16x2_t)pairs[2u * k + 1u], __sxtb16((int8x4_t)((w >> 8) | (w << 24))));
            }}
        }}
    }}
    for (k = words; k-- > 0u;) {{
        uint32_t even = pairs[2u * k], odd = pairs[2u * k + 1u];
        ws.acc[4u * k] = (int16_t)(uint16_t)even;
        ws.acc[4u * k + 1u] = (int16_t)(uint16_t)odd;
        ws.acc[4u * k + 2u] = (int16_t)(uint16_t)(even >> 16);
        ws.acc[4u * k + 3u] = (int16_t)(uint16_t)(odd >> 16);
    }}
}}
#endif

/* Synaptic input of one CUBA-LIF layer step into ws.acc: event-driven sum of the transposed weight rows of the
 * spiking inputs, plus the intra-layer blocks driven by the layer's own spikes s_{{t-1}} (in ws.s of the layer). */
static void lif_layer(const uint8_t *in, uint32_t n_in, const int8_t *w_t, uint32_t packed, const int8_t *blocks_t,
                      uint32_t groups, uint32_t pop, int t, const uint8_t *s, uint32_t n_out) {{
    int32_t *acc = ws.acc;
    uint32_t j, f;
#if SPIKERL_SIMD
    if (packed) {{
        accumulate_packed(in, n_in, w_t, n_out);
    }} else
#endif
    {{
        (void)packed;
        for (f = 0; f < n_out; ++f) acc[f] = 0;
        for (j = 0; j < n_in; ++j) {{
            if (in[j]) {{
                const int8_t *row = w_t + j * n_out;
                for (f = 0; f < n_out; ++f) acc[f] += row[f];
            }}
        }}
    }}
    if (blocks_t && t > 0) {{
        uint32_t g, i;
        for (g = 0; g < groups; ++g) {{
            for (j = 0; j < pop; ++j) {{
                if (s[g * pop + j]) {{
                    const int8_t *row = blocks_t + (g * pop + j) * pop;
                    for (i = 0; i < pop; ++i) acc[g * pop + i] += row[i];
                }}
            }}
        }}
    }}
}}

{"".join(updates)}
/* zero state (the scratch arrays act, acc and pairs are fully written before they are read) */
static void reset_state(void) {{
    uint32_t k;
{reset}
    for (k = 0; k < {upper}_NUM_SPIKING_LAYERS; ++k) ws.stats.spikes[k] = 0u;
    ws.stats.saturated = 0u;
    ws.stats.sops = 0u;
}}

uint32_t {prefix}_step(const int32_t obs_q[OBS_DIM], int16_t action_q[ACT_DIM]) {{
    uint32_t i, p, d, count[{upper}_NUM_SPIKING_LAYERS];
    int t;
    reset_state();
    for (i = 0; i < OBS_DIM; ++i) {{
        int64_t diff = (int64_t)obs_q[i] - (int64_t)NORM_MEAN[i];
        int64_t z = rhaz(diff * (int64_t)NORM_MULT[i], NORM_SHIFT[i]);
        if (z > CLIP_Q12) {{ z = CLIP_Q12; ws.stats.saturated++; }}
        if (z < -CLIP_Q12) {{ z = -CLIP_Q12; ws.stats.saturated++; }}
        for (p = 0; p < ENC_POP; ++p) {{
            uint32_t k = i * ENC_POP + p;
            int32_t delta = (int32_t)z - (int32_t)ENC_MEAN[k];
            uint32_t dist = (uint32_t)(delta < 0 ? -delta : delta);
            uint32_t pos = (dist * (uint32_t)ENC_RHO[k]) >> GAUSS_POS_SHIFT;
            uint32_t index = pos >> 8, frac = pos & 255u;
            ws.act[k] = (uint16_t)(index < GAUSS_LAST
                ? ((uint32_t)GAUSS_LUT[index] * (256u - frac) + (uint32_t)GAUSS_LUT[index + 1u] * frac + 128u) >> 8
                : 0u);
        }}
    }}
    for (t = 0; t < TIMESTEPS; ++t) {{
        count[0] = 0u;
        for (i = 0; i < N_ENC; ++i) {{
            ws.enc[i] += ws.act[i];
            ws.s0[i] = (uint8_t)(ws.enc[i] > ENC_THRESHOLD);
            if (ws.s0[i]) ws.enc[i] -= ENC_THRESHOLD;
            count[0] += ws.s0[i];
        }}
{chr(10).join(layer_calls)}
        ws.stats.sops += count[{n_layers}] * {out_fan}u;
{spike_counts}
        for (d = 0; d < ACT_DIM; ++d) {{
            int32_t drive = 0;
            for (p = 0; p < DEC_POP; ++p)
                if (ws.s{n_layers}[d * DEC_POP + p]) drive += RO_W[d * DEC_POP + p];
            ws.ro_v[d] = {readout_decay} + drive * HEADROOM + RO_B[d];
#if DECODE == 0
            ws.ro_dec[d] = ws.ro_v[d];
#elif DECODE == 1
            ws.ro_dec[d] += ws.ro_v[d];
#else
            if ((ws.ro_v[d] < 0 ? -ws.ro_v[d] : ws.ro_v[d]) > (ws.ro_dec[d] < 0 ? -ws.ro_dec[d] : ws.ro_dec[d]))
                ws.ro_dec[d] = ws.ro_v[d];
#endif
        }}
    }}
    for (d = 0; d < ACT_DIM; ++d) {{
        int64_t z = rhaz((int64_t)ws.ro_dec[d] * (int64_t)RO_MULT[d], OUT_SHIFT);
        int64_t mag = z < 0 ? -z : z;
        int32_t y;
        if ((mag >> TANH_STEP) >= TANH_LAST) {{
            y = 32767;
        }} else {{
            int32_t index = (int32_t)(mag >> TANH_STEP), frac = (int32_t)(mag & ((1 << TANH_STEP) - 1));
            y = (TANH_LUT[index] * ((1 << TANH_STEP) - frac) + TANH_LUT[index + 1] * frac + (1 << (TANH_STEP - 1)))
                >> TANH_STEP;
        }}
        action_q[d] = (int16_t)(z < 0 ? -y : y);
    }}
    return ws.stats.saturated;
}}

const {prefix}_stats_t *{prefix}_last_stats(void) {{
    return &ws.stats;
}}
"""
    return GeneratedC(prefix, header, source, digest)
