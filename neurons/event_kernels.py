"""Event-driven (numba) inference kernels for small batches.

At batch 1 the spiking actor is dominated by per-op dispatch, not arithmetic. These kernels compute a
whole layer — synaptic input and CUBA-LIF scan — in one call, adding only the weight rows of inputs that
spiked (binary inputs make ``W x`` a sum of selected rows). Same equations as :mod:`neurons.lif`; the
only difference from the batched GEMM path is the floating-point summation order.

``weight_t`` is the transposed weight ``[F_in, F_out]`` so the rows added per input spike are contiguous.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neurons.lif_kernels import lif_step


@njit(cache=True, nogil=True)
def regular_spikes(activation, threshold, spikes):  # pragma: no cover
    """Regular (deterministic) spike trains ``spikes [T, B, F]`` of activations ``activation [B, F]``: the spike
    count after ``t`` steps is ``max(ceil(t * A / threshold) - 1, 0)`` (float32, the formula of
    :meth:`neurons.encoders.PopulationEncoder.encode`), at most one spike per step."""
    steps, batch, features = spikes.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    for b in range(batch):
        for f in range(features):
            rate = activation[b, f] / threshold
            previous = zero
            for t in range(steps):
                count = max(np.ceil(np.float32(t + 1) * rate) - one, zero)
                spikes[t, b, f] = min(count - previous, one)
                previous = count


@njit(cache=True, nogil=True)
def regular_population_spikes(obs, mean, std, threshold, spikes):  # pragma: no cover
    """Deterministic population encoding: ``obs [B, N]``, ``mean/std [N, P]`` -> ``spikes [T, B, N*P]``."""
    batch, n_obs = obs.shape
    pop = mean.shape[1]
    activation = np.empty((batch, n_obs * pop), np.float32)
    for b in range(batch):
        for i in range(n_obs):
            for k in range(pop):
                z = (obs[b, i] - mean[i, k]) / std[i, k]
                activation[b, i * pop + k] = np.exp(np.float32(-0.5) * z * z)
    regular_spikes(activation, threshold, spikes)


@njit(cache=True, nogil=True)
def lif_layer_events(
    in_spikes, weight_t, bias, blocks, current_decay, voltage_decay, threshold, out_spikes
):  # pragma: no cover
    """One ``Linear + CurrentLIF`` layer over all steps: ``in_spikes [T, B, F_in]`` -> ``out_spikes [T, B, F_out]``.

    ``blocks [G, P, P]`` (``G = 0`` for none) adds ``blocks[g] @ s_{t-1}[g]`` to the synaptic current.
    """
    steps, batch, fan_in = in_spikes.shape
    fan_out = weight_t.shape[1]
    current = np.empty(fan_out, dtype=weight_t.dtype)
    membrane = np.empty(fan_out, dtype=weight_t.dtype)
    synapse = np.empty(fan_out, dtype=weight_t.dtype)
    after_reset = np.empty(fan_out, dtype=weight_t.dtype)
    for b in range(batch):
        for t in range(steps):
            for f in range(fan_out):
                current[f] = bias[f]
            for i in range(fan_in):
                if in_spikes[t, b, i] != 0.0:
                    row = weight_t[i]
                    for f in range(fan_out):
                        current[f] += row[f]
            lif_step(
                t, current, out_spikes[max(t - 1, 0), b], blocks, current_decay, voltage_decay, threshold,
                synapse, after_reset, membrane, out_spikes[t, b],
            )  # fmt: skip


# Decode mode -> code, the one table of the project (re-exported by :mod:`neurons.readout`): the kernels below
# and the generated C branch on these codes. It lives in this file because numba compiles globals in as
# constants and its on-disk cache is invalidated only by changes to the file that defines the kernel.
DECODE_CODES = {"last": 0, "mean": 1, "max-abs": 2, "rate": 3}
DECODE_LAST, DECODE_MEAN, DECODE_MAX_ABS, DECODE_RATE = (DECODE_CODES[m] for m in ("last", "mean", "max-abs", "rate"))


@njit(cache=True, nogil=True)
def spiking_actor_forward(
    obs,
    mean,
    std,
    encoder_threshold,
    weights_t,
    biases,
    intra_bias,
    intra_bias_mask,
    intra_weight,
    intra_weight_mask,
    current_decay,
    voltage_decay,
    threshold,
    readout_weight,
    readout_bias,
    readout_decay,
    decode,
    records,
    actions,
):  # pragma: no cover
    """Whole population-coded actor: encoder, ``len(weights_t)`` LIF layers, and a per-action readout of the
    output populations into ``actions [B, M]`` (pre-activation).

    The last layer adds the intra-layer bias ``intra_bias * intra_bias_mask`` (``[F]``) to its bias and has the
    recurrent blocks ``intra_weight * intra_weight_mask`` (``[G, P, P]``, ``G = 0`` for none). The masks are
    applied here, so every argument can be a live view of a parameter (nothing derived is cached).

    ``records`` receives every layer's spikes (``records[0]`` the encoder's). ``decode`` (a code of
    :data:`DECODE_CODES`): ``"rate"`` (PopSAN: ``w . mean_t(s) + b``) or a non-spiking
    readout ``V_t = decay V_{t-1} + w . s_t + b`` decoded by ``"last"``, ``"mean"`` or ``"max-abs"``.
    """
    regular_population_spikes(obs, mean, std, encoder_threshold, records[0])
    last = len(weights_t) - 1
    last_bias = biases[last] + intra_bias * intra_bias_mask
    blocks = intra_weight * intra_weight_mask
    no_blocks = blocks[:0]
    for layer in range(last + 1):
        lif_layer_events(
            records[layer],
            weights_t[layer],
            last_bias if layer == last else biases[layer],
            blocks if layer == last else no_blocks,
            current_decay,
            voltage_decay,
            threshold,
            records[layer + 1],
        )
    out = records[last + 1]
    steps, batch, _ = out.shape
    groups, pop = readout_weight.shape
    for b in range(batch):
        for g in range(groups):
            voltage = np.float32(0.0)
            total = np.float32(0.0)
            extreme = np.float32(0.0)
            for t in range(steps):
                current = readout_bias[g]
                for k in range(pop):
                    current += readout_weight[g, k] * out[t, b, g * pop + k]
                voltage = readout_decay * voltage + current
                total += voltage
                if abs(voltage) > abs(extreme):
                    extreme = voltage
            if decode == DECODE_RATE:
                rate_sum = np.float32(0.0)
                for k in range(pop):
                    count = np.float32(0.0)
                    for t in range(steps):
                        count += out[t, b, g * pop + k]
                    rate_sum += readout_weight[g, k] * (count / steps)
                actions[b, g] = rate_sum + readout_bias[g]
            elif decode == DECODE_LAST:
                actions[b, g] = voltage
            elif decode == DECODE_MEAN:
                actions[b, g] = total / steps
            else:
                actions[b, g] = extreme


def _byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every 8-bit mask: the positions of its set bits (``[256, 8]``, padded) and their count (``[256]``)."""
    positions = np.zeros((256, 8), np.int32)
    counts = np.zeros(256, np.int32)
    for mask in range(256):
        bits = [i for i in range(8) if mask >> i & 1]
        positions[mask, : len(bits)] = bits
        counts[mask] = len(bits)
    return positions, counts


BYTE_POSITIONS, BYTE_COUNTS = _byte_tables()
EVENT_SLACK = 8  # spike_events writes up to 8 entries past the last spike: ``cols`` needs this much spare room


@njit(cache=True, nogil=True)
def spike_events(x, max_count, cols, row_offsets, positions, counts):  # pragma: no cover
    """Row-major sparse index list of a binary, C-contiguous float32 ``x [R, F]``.

    Fills ``cols`` (input index of every spike, row by row; it needs ``max_count + EVENT_SLACK`` entries) and
    ``row_offsets [R + 1]``. Returns the spike count, or -1 if an entry of ``x`` is neither 0 nor 1 or there
    are more than ``max_count`` spikes. ``positions``/``counts`` are :data:`BYTE_POSITIONS`/:data:`BYTE_COUNTS`.

    Branch-free: a first pass checks and counts (vectorised); the second turns every 8 inputs into an 8-bit
    mask (one multiply packs eight 0/1 bytes) and copies that mask's spike positions from the table.
    """
    n_rows, n_cols = x.shape
    bits = x.view(np.uint32)
    one, magnitude = np.uint32(0x3F800000), np.uint32(0x7FFFFFFF)  # 1.0f; all bits but the sign
    total = 0
    invalid = False
    for r in range(n_rows):
        for i in range(n_cols):
            spiked = (bits[r, i] & magnitude) != 0  # -0.0 counts as 0
            total += spiked
            invalid |= spiked & (bits[r, i] != one)
    if invalid or total > max_count:
        return -1
    words = (n_cols + 7) // 8
    flags = np.zeros(words * 8, np.uint8)
    packed = flags.view(np.uint64)
    magic, shift = np.uint64(0x0102040810204080), np.uint64(56)
    count = 0
    for r in range(n_rows):
        row_offsets[r] = count
        for i in range(n_cols):
            flags[i] = (bits[r, i] & magnitude) != 0
        for w in range(words):
            mask = (packed[w] * magic) >> shift
            base = w * 8
            for j in range(8):
                cols[count + j] = positions[mask, j] + base
            count += counts[mask]
    row_offsets[n_rows] = count
    return count


@njit(cache=True, nogil=True)
def events_by_input(cols, row_offsets, rows, col_offsets):  # pragma: no cover
    """Column-major form of a row-major index list (counting sort): ``rows`` (row of every spike, input by
    input, rows ascending) and ``col_offsets [F + 1]`` from ``cols``/``row_offsets [R + 1]``."""
    n_rows = row_offsets.shape[0] - 1
    n_cols = col_offsets.shape[0] - 1
    col_offsets[:] = 0
    for k in range(row_offsets[n_rows]):
        col_offsets[cols[k] + 1] += 1
    for i in range(n_cols):
        col_offsets[i + 1] += col_offsets[i]
    fill = col_offsets[:-1].copy()
    for r in range(n_rows):
        for k in range(row_offsets[r], row_offsets[r + 1]):
            i = cols[k]
            rows[fill[i]] = r
            fill[i] += 1
