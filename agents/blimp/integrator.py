"""A hand-set SNN-I: genome values that make the blimp SNN integrate the error in its hidden synaptic currents.

Evolution from the activity-preserving start finds open-loop imitators of the I term that do not integrate in the
loop (plain LIF "failed to integrate" in the paper too). The network of :mod:`agents.blimp.snn` can integrate
exactly, though, and this module writes that solution down (``fitness.init: integrator``; fine-tuning it by CMA-ES
breaks the balance of the 2×2 blocks the integral depends on, see docs/blimp.md). With ``K = N/2`` pairs, pair ``k``:

* encoding pair: ``I = ±w e + b_k``, ``τ_mem ≈ 1``, ``ϑ = 1``. A non-leaky soft-reset neuron is a sigma-delta
  modulator: its spike count over ``t`` ticks is ``⌊Σ I / ϑ⌋``, so the pair's count difference is ``2 w Σ e``
  while ``|w e| ≤ min(b_k, 1 − b_k)`` (beyond that the integrand saturates, which limits wind-up);
* hidden pair: the 2×2 block ``[[a_k, −a_k], [−a_k, a_k]]`` and ``τ_syn = 1`` make the synaptic current the
  integral, ``c = ±a_k · 2 w Σ e``; with ``τ_mem ≈ 1`` the neuron whose current is positive fires at
  ``c / ϑ_k`` spikes per tick (at most 1);
* readout ``±d`` per pair: the command averages ``Σ_k d (c_k / ϑ_k)``, i.e. ``Ki·T · Σ e`` when
  ``a_k = Ki·T · ϑ_k / (K · d · 2 w)``, bounded by ``± K d`` (the anti-windup clamp).

The membranes leak a little (``τ_mem = 0.95``, not 1): a non-leaky neuron driven negative stores that charge without
bound (the silent neuron of a pair winds up, and once the error turns it stays silent while the integral should
follow), which in closed loop parked the blimp at the ceiling. The leak bounds the stored charge; it costs each
neuron a rate offset of about ``(1 − τ_mem) ϑ / 2`` per tick, which cancels within an encoding pair and gives the
hidden neurons a small dead zone. Biases and hidden thresholds are spread over the pairs so that the pairs do not
fire in lockstep (identical pairs would deliver the command as synchronous pulses of ``K d``). The readout
retention is 0.3, the I network's bound (a retention of 1 would never let the command change).
"""

from __future__ import annotations

import numpy as np

from agents.blimp.snn import SNNArchitecture


def integrator_genome(
    architecture: SNNArchitecture,
    gain_per_tick: float,
    readout_weight: float = 0.3,
    encoding_weight: float = 0.5,
    bias_range: tuple[float, float] = (0.3, 0.7),
    threshold_range: tuple[float, float] = (0.5, 1.5),
    encoding_decay: float = 0.95,
    hidden_decay: float = 0.95,
    readout_decay: float = 0.3,
) -> np.ndarray:
    """Normalised genome ``[D]`` of a network whose command approximates ``gain_per_tick · Σ_t e_t``.

    Args:
        architecture: the network (any variant; recurrent and threshold-adaptation weights are set to zero).
        gain_per_tick: ``Ki · T``, code units per metre of error per tick (the deployed PID: 0.75 · 0.1).
        readout_weight: ``d``; the output saturates at ``± hidden/2 · d`` code units.
        encoding_weight: ``w`` (per metre); the integrand saturates at ``|e| ≈ min(b, 1 − b) / w``.
        bias_range: encoding biases ``b_k``, spread evenly over the pairs.
        threshold_range: hidden thresholds ``ϑ_k``, spread evenly over the pairs.
        encoding_decay, hidden_decay: membrane retention ``τ_mem`` of the two layers (1 = the exact modulator).
        readout_decay: readout retention ``τ_d`` (smooths the spike-quantised command; its mean does not depend on
            it), at most the architecture's ``readout_decay_max``.
    """
    k, n = architecture.hidden // 2, architecture.hidden
    if gain_per_tick <= 0:
        raise ValueError(f"gain_per_tick must be > 0, got {gain_per_tick}")
    threshold = np.linspace(*threshold_range, k)
    coupling = gain_per_tick * threshold / (k * readout_weight * 2 * encoding_weight)
    blocks = coupling[:, None, None] * np.array([[1.0, -1.0], [-1.0, 1.0]])
    params = {
        "enc_weight": np.full(k, encoding_weight),
        "enc_bias": np.linspace(*bias_range, k),
        "enc_mem_decay": np.full(n, encoding_decay),
        "enc_threshold": np.ones(n),
        "hid_weight": blocks,
        "hid_syn_decay": np.ones(n),
        "hid_mem_decay": np.full(n, hidden_decay),
        "hid_threshold": np.repeat(threshold, 2),
        "rec_weight": np.zeros((n, n)),
        "th_decay": np.zeros(n),
        "th_weight": np.zeros((n, n)),
        "dec_weight": np.tile([readout_weight, -readout_weight], k),
        "dec_decay": np.array([min(readout_decay, architecture.readout_decay_max)]),
    }
    for block in architecture.blocks():
        values = params[block.name]
        if values.min() < block.low or values.max() > block.high:
            raise ValueError(
                f"{block.name} of the integrator leaves its bounds [{block.low}, {block.high}]: "
                f"[{values.min():.3g}, {values.max():.3g}]; lower the gain or raise readout_weight"
            )
    return architecture.encode({block.name: params[block.name] for block in architecture.blocks()})
