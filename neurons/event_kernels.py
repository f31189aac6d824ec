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
def regular_population_spikes(obs, mean, std, threshold, spikes):  # pragma: no cover
    """Deterministic population encoding: ``obs [B, N]``, ``mean/std [N, P]`` -> ``spikes [T, B, N*P]``."""
    steps, batch, _ = spikes.shape
    n_obs, pop = mean.shape
    for b in range(batch):
        for i in range(n_obs):
            for k in range(pop):
                z = (obs[b, i] - mean[i, k]) / std[i, k]
                activation = np.exp(np.float32(-0.5) * z * z)
                previous = np.float32(0.0)
                for t in range(steps):
                    count = max(np.ceil((t + 1) * (activation / threshold)) - 1, np.float32(0.0))
                    spikes[t, b, i * pop + k] = min(count - previous, np.float32(1.0))
                    previous = count


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


DECODE_RATE, DECODE_LAST, DECODE_MEAN, DECODE_MAX_ABS = 0, 1, 2, 3
DECODE_CODES = {"rate": DECODE_RATE, "last": DECODE_LAST, "mean": DECODE_MEAN, "max-abs": DECODE_MAX_ABS}


@njit(cache=True, nogil=True)
def spiking_actor_forward(
    obs,
    mean,
    std,
    encoder_threshold,
    weights_t,
    biases,
    blocks,
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
    """Whole population-coded actor: encoder, ``len(weights_t)`` LIF layers (the last with ``blocks``), and a
    per-action readout of the output populations into ``actions [B, M]`` (pre-activation).

    ``records`` receives every layer's spikes (``records[0]`` the encoder's). ``decode``: ``DECODE_RATE``
    (PopSAN: ``w . mean_t(s) + b``) or a non-spiking readout ``V_t = decay V_{t-1} + w . s_t + b`` decoded by
    ``DECODE_LAST``, ``DECODE_MEAN`` or ``DECODE_MAX_ABS``.
    """
    regular_population_spikes(obs, mean, std, encoder_threshold, records[0])
    last = len(weights_t) - 1
    no_blocks = blocks[:0]
    for layer in range(last + 1):
        layer_blocks = blocks if layer == last else no_blocks
        lif_layer_events(
            records[layer],
            weights_t[layer],
            biases[layer],
            layer_blocks,
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


@njit(cache=True, nogil=True)
def spike_events(x, cols, row_offsets, rows, col_offsets):  # pragma: no cover
    """Sparse index lists of a binary ``x [R, F]`` for :func:`torch.nn.functional.embedding_bag`.

    Fills ``cols`` (input index of every spike, row by row) with ``row_offsets [R + 1]``, and ``rows`` (row
    of every spike, input by input, rows ascending) with ``col_offsets [F + 1]``; ``cols``/``rows`` must hold
    the spike count. Returns the spike count, or -1 if an entry of ``x`` is neither 0 nor 1 or there are more
    spikes than ``cols`` holds.
    """
    n_rows, n_cols = x.shape
    capacity = cols.shape[0]
    col_offsets[:] = 0
    count = 0
    for r in range(n_rows):
        row_offsets[r] = count
        for i in range(n_cols):
            value = x[r, i]
            if value != 0.0:
                if value != 1.0 or count == capacity:
                    return -1
                cols[count] = i
                col_offsets[i + 1] += 1
                count += 1
    row_offsets[n_rows] = count
    for i in range(n_cols):
        col_offsets[i + 1] += col_offsets[i]
    fill = col_offsets[:-1].copy()
    for r in range(n_rows):
        for k in range(row_offsets[r], row_offsets[r + 1]):
            i = cols[k]
            rows[fill[i]] = r
            fill[i] += 1
    return count
