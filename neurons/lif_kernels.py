"""Compiled (numba) CPU kernels for the CUBA-LIF scan of :mod:`neurons.lif`.

Same equations as :func:`neurons.lif.scan_reference`; one call runs all ``T`` steps of a layer, so the
Python overhead per layer is a few microseconds instead of ~5 tensor ops per step. The recurrent term
``R_g s_{t-1}`` is event-driven: only neurons that spiked add their weight column.

Arrays: ``current``, ``membrane``, ``spikes`` are ``[T, B, F]``; ``blocks`` is ``[G, P, P]`` with
``G * P == F`` (an empty ``[0, 1, 1]`` array means no recurrence).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def lif_step(
    t, current, previous_spikes, blocks, current_decay, voltage_decay, threshold, synapse, after_reset, membrane, spikes
):  # pragma: no cover
    """One CUBA-LIF step of one sample: input ``current [F]`` -> ``membrane [F]`` (h_t) and ``spikes [F]``.

    ``synapse`` and ``after_reset`` carry the state between steps; ``previous_spikes`` is ``s_{t-1}``.
    """
    features = current.shape[0]
    groups = blocks.shape[0]
    pop = blocks.shape[1]
    if t == 0:
        for f in range(features):
            synapse[f] = current[f]
    else:
        for f in range(features):
            synapse[f] = current[f] + current_decay * synapse[f]
        if groups > 0:  # event-driven R_g s_{t-1}: add the weight column of every neuron that spiked
            for j in range(features):
                if previous_spikes[j] != 0.0:
                    g = j // pop
                    col = j - g * pop
                    for i in range(pop):
                        synapse[g * pop + i] += blocks[g, i, col]
    for f in range(features):
        h = synapse[f] if t == 0 else synapse[f] + voltage_decay * after_reset[f]
        membrane[f] = h
        if h > threshold:
            spikes[f] = 1.0
            after_reset[f] = 0.0
        else:
            spikes[f] = 0.0
            after_reset[f] = h


@njit(cache=True, nogil=True)
def lif_forward(current, blocks, current_decay, voltage_decay, threshold, membrane, spikes):  # pragma: no cover
    steps, batch, features = current.shape
    synapse = np.empty(features, dtype=current.dtype)
    after_reset = np.empty(features, dtype=current.dtype)
    for b in range(batch):
        for t in range(steps):
            lif_step(
                t, current[t, b], spikes[max(t - 1, 0), b], blocks, current_decay, voltage_decay, threshold,
                synapse, after_reset, membrane[t, b], spikes[t, b],
            )  # fmt: skip


@njit(cache=True, nogil=True)
def lif_backward(
    grad_spikes, membrane, spikes, blocks, current_decay, voltage_decay, threshold, width, grad_current
):  # pragma: no cover
    steps, batch, features = membrane.shape
    groups = blocks.shape[0]
    pop = blocks.shape[1]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    height = np.float32(0.5) / width
    grad_h = np.empty(features, dtype=membrane.dtype)
    upstream = np.zeros(features, dtype=membrane.dtype)  # (g_c_{t+1} R)[f]: extra dL/ds_t from the recurrence
    last = steps - 1
    for b in range(batch):
        for f in range(features):
            d = membrane[last, b, f] - threshold
            surrogate = height if -width < d < width else zero
            grad_h[f] = surrogate * grad_spikes[last, b, f]
            grad_current[last, b, f] = grad_h[f]
        for t in range(last - 1, -1, -1):
            if groups > 0:
                for g in range(groups):
                    for j in range(pop):
                        acc = zero
                        for i in range(pop):
                            acc += grad_current[t + 1, b, g * pop + i] * blocks[g, i, j]
                        upstream[g * pop + j] = acc
            for f in range(features):
                h = membrane[t, b, f]
                d = h - threshold
                surrogate = height if -width < d < width else zero
                value = surrogate * (grad_spikes[t, b, f] + upstream[f])
                value += voltage_decay * grad_h[f] * ((one - spikes[t, b, f]) - surrogate * h)
                grad_h[f] = value
                grad_current[t, b, f] = value + current_decay * grad_current[t + 1, b, f]
