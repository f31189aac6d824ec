"""Generate self-contained C99 for an :class:`IntegerBlimpController` (one or more summed networks).

Same standards as :mod:`agents.export.c_codegen` (``static const`` parameters, one static state, no ``malloc``, no
floating point, sign-magnitude rounding helpers, every ``int32_t`` state bound proven at export). API (``<prefix>``
defaults to ``spikerl_blimp``)::

    void    <prefix>_reset(void);                  /* zero every state (power-on) */
    int32_t <prefix>_step(int32_t error_q);        /* error (Q16.16 m) -> command (Q16.16 code units) */
    const <prefix>_stats_t *<prefix>_last_stats(void);   /* spikes per layer, SOPs, saturation of the last tick */

The semantics are those of :mod:`agents.export.blimp_reference`, tick for tick. The C text is
``templates/blimp.h.j2`` and ``templates/blimp.c.j2``, which inline the fixed fragments ``rtz_mul.c``, ``rhaz.c``,
``blimp_types.h`` and ``blimp_net_step.c`` verbatim; Python only computes the values.
"""

from __future__ import annotations

from types import SimpleNamespace

from agents.export.blimp_quantization import (
    ERROR_CLIP_Q16,
    ERROR_FRACTION_BITS,
    TRACE_BITS,
    IntegerBlimpController,
    IntegerBlimpNetwork,
)
from agents.export.c_codegen import GeneratedC, c_initialiser, check_prefix, model_hash, render
from agents.export.quantization import DECAY_BITS, OUT_SHIFT

DEFAULT_BLIMP_PREFIX = "spikerl_blimp"


def _arrays(net: IntegerBlimpNetwork) -> dict:
    """The integer arrays of ``net`` by field name (``rec_weight_t``, ``th_decay``, ``th_weight`` may be ``None``)."""
    names = ("enc_weight", "enc_bias", "enc_decay", "enc_threshold", "hid_weight", "hid_syn_decay", "hid_mem_decay",
             "hid_threshold", "dec_weight", "rec_weight_t", "th_decay", "th_weight")  # fmt: skip
    return {name: getattr(net, name) for name in names}


def _network_values(net: IntegerBlimpNetwork) -> SimpleNamespace:
    """What ``blimp.c.j2`` needs of one network: its C tag, sizes, scalars and array initialisers."""
    enc_fan, hid_fan = net.fan_out
    return SimpleNamespace(
        **{name: None if array is None else c_initialiser(array) for name, array in _arrays(net).items()},
        tag=net.name.upper(),
        name=net.name,
        variant=net.variant,
        hidden=net.hidden,
        recurrent=net.recurrent,
        iwta=net.iwta,
        dec_decay=net.dec_decay,
        out_mult=net.out_mult,
        enc_fan=enc_fan,
        hid_fan=hid_fan,
    )


def generate_blimp_c(controller: IntegerBlimpController, prefix: str = DEFAULT_BLIMP_PREFIX) -> GeneratedC:
    """Header and source for ``controller``; deterministic (same controller -> same text)."""
    check_prefix(prefix)
    for net in controller.networks:
        check_prefix(net.name)
    digest = model_hash(controller)
    values = {
        "prefix": prefix,
        "upper": prefix.upper(),
        "digest": digest,
        "nets": [_network_values(net) for net in controller.networks],
        "weight_type": "int8_t" if controller.weight_bits == 8 else "int16_t",
        "headroom_bits": controller.headroom_bits,
        "headroom": 1 << controller.headroom_bits,
        "clip_m": ERROR_CLIP_Q16 >> ERROR_FRACTION_BITS,
        "DECAY_BITS": DECAY_BITS,
        "ERROR_CLIP_Q16": ERROR_CLIP_Q16,
        "ERROR_FRACTION_BITS": ERROR_FRACTION_BITS,
        "TRACE_BITS": TRACE_BITS,
        "OUT_SHIFT": OUT_SHIFT,
    }
    return GeneratedC(prefix, render("blimp.h.j2", **values), render("blimp.c.j2", **values), digest)
