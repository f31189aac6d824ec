"""Generate self-contained C99 for an :class:`IntegerBlimpController` (one or more summed networks).

Same standards as :mod:`agents.export.c_codegen` (``static const`` parameters, one static state, no ``malloc``, no
floating point, sign-magnitude rounding helpers, every ``int32_t`` state bound proven at export). API (``<prefix>``
defaults to ``spikerl_blimp``)::

    void    <prefix>_reset(void);                  /* zero every state (power-on) */
    int32_t <prefix>_step(int32_t error_q);        /* error (Q16.16 m) -> command (Q16.16 code units) */
    const <prefix>_stats_t *<prefix>_last_stats(void);   /* spikes per layer, SOPs, saturation of the last tick */

The semantics are those of :mod:`agents.export.blimp_reference`, tick for tick.
"""

from __future__ import annotations

from agents.export.blimp_quantization import (
    ERROR_CLIP_Q16,
    ERROR_FRACTION_BITS,
    TRACE_BITS,
    IntegerBlimpController,
    IntegerBlimpNetwork,
)
from agents.export.blimp_reference import synaptic_fan_out
from agents.export.c_codegen import C_ROUNDING_HELPERS, GeneratedC, c_array, check_prefix, model_hash
from agents.export.quantization import DECAY_BITS, OUT_SHIFT

DEFAULT_BLIMP_PREFIX = "spikerl_blimp"

_TYPES = """typedef struct {
    uint32_t n;
    const weight_t *enc_w;       /* [n] signed input weight per Q16.16 error */
    const int32_t *enc_b;        /* [n] bias (state units) */
    const uint16_t *enc_decay;   /* [n] Q12 membrane retention */
    const int32_t *enc_th;       /* [n] threshold */
    const weight_t *hid_w;       /* [n][2] 2x2 block rows: neuron i from encoding neurons 2(i/2), 2(i/2)+1 */
    const uint16_t *syn_decay;   /* [n] Q12 */
    const uint16_t *mem_decay;   /* [n] Q12 */
    const int32_t *hid_th;       /* [n] base threshold */
    const weight_t *rec_w_t;     /* [n][n] recurrent, [pre][post]; 0 if not recurrent */
    const uint16_t *th_decay;    /* [n] Q12 IWTA trace retention; 0 without IWTA */
    const weight_t *th_w;        /* [n][n] IWTA threshold weights, [post][pre]; 0 without IWTA */
    const weight_t *dec_w;       /* [n] readout gains */
    int32_t dec_decay;           /* Q12 readout retention */
    int32_t out_mult;            /* readout state -> Q16.16 command */
    uint32_t enc_fan;            /* SOPs per encoding spike */
    uint32_t hid_fan;            /* SOPs per hidden spike */
} net_t;

typedef struct {
    int32_t enc_v[MAX_HIDDEN];
    int32_t enc_reset[MAX_HIDDEN];
    int32_t hid_c[MAX_HIDDEN];
    int32_t hid_v[MAX_HIDDEN];
    int32_t hid_reset[MAX_HIDDEN];
    int32_t trace[MAX_HIDDEN];
    uint8_t hid_s[MAX_HIDDEN];
    int32_t readout;
} net_state_t;
"""

_NET_STEP = """/* One control tick of one network: returns its Q16.16 command, stores its spikes, adds its SOPs. */
static int64_t net_step(const net_t *p, net_state_t *st, int32_t e, uint32_t *spikes) {
    uint8_t s_enc[MAX_HIDDEN];
    int32_t drive[MAX_HIDDEN];
    int32_t threshold[MAX_HIDDEN];
    int32_t ro_drive = 0;
    uint32_t i, j, n_enc = 0, n_hid = 0;
    const uint32_t n = p->n;
    for (i = 0; i < n; ++i) {
        int32_t current = (int32_t)rhaz((int64_t)p->enc_w[i] * (int64_t)e, ERROR_SHIFT) + p->enc_b[i];
        st->enc_v[i] = rtz_mul(st->enc_v[i], p->enc_decay[i]) + current - st->enc_reset[i];
        s_enc[i] = (uint8_t)(st->enc_v[i] > p->enc_th[i]);
        st->enc_reset[i] = s_enc[i] ? p->enc_th[i] : 0;
        n_enc += s_enc[i];
    }
    for (i = 0; i < n; ++i) {
        uint32_t first = i & ~1u;
        drive[i] = (s_enc[first] ? p->hid_w[2u * i] : 0) + (s_enc[first + 1u] ? p->hid_w[2u * i + 1u] : 0);
        threshold[i] = p->hid_th[i];
    }
    if (p->rec_w_t) {
        for (j = 0; j < n; ++j) {
            if (st->hid_s[j]) {
                const weight_t *row = p->rec_w_t + j * n;
                for (i = 0; i < n; ++i) drive[i] += row[i];
            }
        }
    }
    if (p->th_w) {
        for (j = 0; j < n; ++j)
            st->trace[j] = rtz_mul(st->trace[j], p->th_decay[j]) + (s_enc[j] ? (int32_t)1 << TRACE_BITS : 0);
        for (i = 0; i < n; ++i) {
            const weight_t *row = p->th_w + i * n;
            int64_t acc = 0;
            for (j = 0; j < n; ++j) acc += (int64_t)row[j] * (int64_t)st->trace[j];
            threshold[i] += (int32_t)rhaz(acc, TRACE_SHIFT);
        }
    }
    for (i = 0; i < n; ++i) {
        st->hid_c[i] = rtz_mul(st->hid_c[i], p->syn_decay[i]) + drive[i] * HEADROOM;
        st->hid_v[i] = rtz_mul(st->hid_v[i], p->mem_decay[i]) + st->hid_c[i] - st->hid_reset[i];
        st->hid_s[i] = (uint8_t)(st->hid_v[i] > threshold[i]);
        st->hid_reset[i] = st->hid_s[i] ? threshold[i] : 0;
        if (st->hid_s[i]) ro_drive += p->dec_w[i];
        n_hid += st->hid_s[i];
    }
    st->readout = rtz_mul(st->readout, p->dec_decay) + ro_drive * HEADROOM;
    spikes[0] = n_enc;
    spikes[1] = n_hid;
    ws.stats.sops += n_enc * p->enc_fan + n_hid * p->hid_fan;
    return rhaz((int64_t)st->readout * (int64_t)p->out_mult, OUT_SHIFT);
}
"""


def _network_constants(net: IntegerBlimpNetwork, weight_type: str) -> str:
    tag = net.name.upper()
    parts = [
        c_array(weight_type, f"{tag}_ENC_W", net.enc_weight),
        c_array("int32_t", f"{tag}_ENC_B", net.enc_bias),
        c_array("uint16_t", f"{tag}_ENC_DECAY", net.enc_decay),
        c_array("int32_t", f"{tag}_ENC_TH", net.enc_threshold),
        c_array(weight_type, f"{tag}_HID_W", net.hid_weight),
        c_array("uint16_t", f"{tag}_SYN_DECAY", net.hid_syn_decay),
        c_array("uint16_t", f"{tag}_MEM_DECAY", net.hid_mem_decay),
        c_array("int32_t", f"{tag}_HID_TH", net.hid_threshold),
        c_array(weight_type, f"{tag}_DEC_W", net.dec_weight),
    ]
    if net.recurrent:
        parts.append(c_array(weight_type, f"{tag}_REC_W_T", net.rec_weight_t))
    if net.iwta:
        parts.append(c_array("uint16_t", f"{tag}_TH_DECAY", net.th_decay))
        parts.append(c_array(weight_type, f"{tag}_TH_W", net.th_weight))
    enc_fan, hid_fan = synaptic_fan_out(net)
    fields = [
        f"{net.hidden}u", f"{tag}_ENC_W", f"{tag}_ENC_B", f"{tag}_ENC_DECAY", f"{tag}_ENC_TH", f"{tag}_HID_W",
        f"{tag}_SYN_DECAY", f"{tag}_MEM_DECAY", f"{tag}_HID_TH", f"{tag}_REC_W_T" if net.recurrent else "0",
        f"{tag}_TH_DECAY" if net.iwta else "0", f"{tag}_TH_W" if net.iwta else "0", f"{tag}_DEC_W",
        str(net.dec_decay), str(net.out_mult), f"{enc_fan}u", f"{hid_fan}u",
    ]  # fmt: skip
    parts.append(f"static const net_t NET_{tag} = {{\n    {', '.join(fields)}\n}};\n")
    return "".join(parts)


def generate_blimp_c(controller: IntegerBlimpController, prefix: str = DEFAULT_BLIMP_PREFIX) -> GeneratedC:
    """Header and source for ``controller``; deterministic (same controller -> same text)."""
    check_prefix(prefix)
    for net in controller.networks:
        check_prefix(net.name)
    upper, digest = prefix.upper(), model_hash(controller)
    clip_m = ERROR_CLIP_Q16 >> ERROR_FRACTION_BITS
    nets = controller.networks
    names = " + ".join(f"{net.name} ({net.variant}, {net.hidden} hidden)" for net in nets)
    header = f"""/* {prefix}.h: integer-only evolved blimp SNN controller ({names}), generated by spikerl. Do not edit.
 * Model hash {digest}. Input: altitude error in Q16.16 m (int32, saturated at +-{clip_m} m).
 * Output: motor command in Q16.16 code units (int32; the sum of the networks). Stateful: call {prefix}_reset once,
 * then {prefix}_step once per control tick. No floating point, no malloc; not reentrant (one static state). */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#define {upper}_NUM_NETWORKS {len(nets)}
#define {upper}_MODEL_HASH "{digest}"

typedef struct {{
    uint32_t saturated;                          /* 1 if the last error was clipped */
    uint32_t sops;                               /* synaptic operations of the last tick */
    uint32_t spikes[2 * {upper}_NUM_NETWORKS];   /* encoding, hidden spikes per network of the last tick */
}} {prefix}_stats_t;

/* Zero every state (power-on). */
void {prefix}_reset(void);

/* One control tick: error_q (Q16.16 m) -> command (Q16.16 code units). */
int32_t {prefix}_step(int32_t error_q);

/* Statistics of the most recent {prefix}_step call. */
const {prefix}_stats_t *{prefix}_last_stats(void);

#endif /* {upper}_H */
"""
    weight_type = "int8_t" if controller.weight_bits == 8 else "int16_t"
    h = controller.headroom_bits
    calls = "\n".join(
        f"    total += net_step(&NET_{net.name.upper()}, &ws.net[{k}], e, &ws.stats.spikes[{2 * k}]);"
        for k, net in enumerate(nets)
    )
    source = f"""/* {prefix}.c: integer-only evolved blimp SNN controller, generated by spikerl. Do not edit.
 * Model hash {digest}. Semantics: agents/export/blimp_reference.py. Headroom H = {h} bits, decays Q{DECAY_BITS}
 * with round-toward-zero, IWTA traces Q{TRACE_BITS}, soft reset by the fired threshold. Every int32 state bound
 * was proven at export. */
#include "{prefix}.h"

#define DECAY_BITS {DECAY_BITS}
#define HEADROOM {1 << h}
#define ERROR_SHIFT {ERROR_FRACTION_BITS - h}
#define ERROR_CLIP {ERROR_CLIP_Q16}
#define TRACE_BITS {TRACE_BITS}
#define TRACE_SHIFT {TRACE_BITS - h}
#define OUT_SHIFT {OUT_SHIFT}
#define MAX_HIDDEN {max(net.hidden for net in nets)}

typedef {weight_type} weight_t;

{C_ROUNDING_HELPERS}
{_TYPES}
static struct {{
    net_state_t net[{len(nets)}];
    {prefix}_stats_t stats;
}} ws;

{"".join(_network_constants(net, weight_type) for net in nets)}
{_NET_STEP}
void {prefix}_reset(void) {{
    uint8_t *bytes = (uint8_t *)&ws;
    uint32_t k;
    for (k = 0; k < (uint32_t)sizeof(ws); ++k) bytes[k] = 0;
}}

int32_t {prefix}_step(int32_t error_q) {{
    int32_t e = error_q;
    int64_t total = 0;
    ws.stats.saturated = 0u;
    ws.stats.sops = 0u;
    if (e > ERROR_CLIP) {{
        e = ERROR_CLIP;
        ws.stats.saturated = 1u;
    }} else if (e < -ERROR_CLIP) {{
        e = -ERROR_CLIP;
        ws.stats.saturated = 1u;
    }}
{calls}
    return (int32_t)total;
}}

const {prefix}_stats_t *{prefix}_last_stats(void) {{
    return &ws.stats;
}}
"""
    return GeneratedC(prefix, header, source, digest)
