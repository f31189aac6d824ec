"""NumPy integer reference of an :class:`IntegerPolicy`: int64 arrays only, no floating point.

This is the executable definition of the integer semantics; the generated C must match it bit for bit.
Per environment step (all states start at zero, as in the float actor), for SNN steps ``t = 0..T-1``::

    z      = sat(rhaz((obs_q - norm_mean) * norm_mult, norm_shift), +-clip)          Q12, once per call
    a      = GaussLUT(|z - mu_q| * rho_q >> 11)                                      Q15, once per call
    e     += a ;  s_enc = e > 32734 ;  e -= 32734 * s_enc                            regular spikes
    layer: A = sum of weight_t rows of the input spikes (+ intra-layer rows of s_{t-1})
           I = rtz(alpha_q * I, 12) + A * 2^H + bias
           V = (s_{t-1} ? 0 : rtz(beta_q * V, 12)) + I ;  s = V > threshold
    readout: V_d = rtz(lambda_q * V_d, 12) + (w_d . s_t) * 2^H + bias_d ; decoded (last | sum | max-abs)
    action = tanhLUT(rhaz(V_d * out_mult_d, 20))                                      Q15

``rtz(x, n) = sign(x) (|x| >> n)`` (round toward zero), ``rhaz(x, n) = sign(x) ((|x| + 2^(n-1)) >> n)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.export.quantization import (
    DECAY_BITS,
    ENCODER_THRESHOLD_Q15,
    GAUSS_LUT_SIZE,
    GAUSS_LUT_STEP_BITS,
    OUT_SHIFT,
    TANH_LUT_SIZE,
    TANH_LUT_STEP_BITS,
    Z_FRACTION_BITS,
    IntegerPolicy,
    gaussian_lut,
    tanh_lut,
)

_GAUSS = gaussian_lut().astype(np.int64)
_TANH = tanh_lut().astype(np.int64)


def rtz(x: np.ndarray, bits: int) -> np.ndarray:
    """Arithmetic shift right rounding toward zero (decays)."""
    return np.where(x < 0, -((-x) >> bits), x >> bits)


def rhaz(x: np.ndarray, bits: np.ndarray | int) -> np.ndarray:
    """Shift right rounding half away from zero; ``bits >= 1`` (scalar or broadcastable array)."""
    half = np.left_shift(np.int64(1), np.asarray(bits, np.int64) - 1)
    return np.where(x < 0, -((-x + half) >> bits), (x + half) >> bits)


@dataclass
class IntegerStep:
    """Result of one batch of integer inferences.

    Attributes:
        actions: int64 ``[B, M]``, Q15 tanh outputs in ``[-32767, 32767]``.
        spike_counts: int64 ``[B, L]``, spikes over all ``T`` steps per layer (encoder first).
        sops: int64 ``[B]``, synaptic operations (input spikes x fan-out, summed over layers and steps).
        saturated: int64 ``[B]``, observation dimensions clipped by the normalisation (out of trained range).
        preactivation: int64 ``[B, M]``, Q12 readout value fed to the tanh LUT.
    """

    actions: np.ndarray
    spike_counts: np.ndarray
    sops: np.ndarray
    saturated: np.ndarray
    preactivation: np.ndarray


class IntegerReference:
    """Batched NumPy executor of an :class:`IntegerPolicy` (inputs int32 Q16.16 ``[B, N]``)."""

    def __init__(self, policy: IntegerPolicy) -> None:
        self.policy = policy
        i64 = np.int64
        self._norm = (policy.norm_mean.astype(i64), policy.norm_mult.astype(i64), policy.norm_shift.astype(i64))
        self._encoder = (policy.encoder_mean.astype(i64), policy.encoder_rho.astype(i64))
        self._weights = [layer.weight_t.astype(i64) for layer in policy.layers]
        self._blocks = [None if layer.blocks_t is None else layer.blocks_t.astype(i64) for layer in policy.layers]
        self._readout_weight = policy.readout.weight.astype(i64)
        self.state_peaks: dict[str, int] = {}  # largest |I| or |V| seen per layer (checks the overflow proof)

    def normalise(self, obs_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Q12 normalised observations ``[B, N]`` and the number of saturated dimensions ``[B]``."""
        mean, mult, shift = self._norm
        z = rhaz((obs_q.astype(np.int64) - mean) * mult, shift)
        clip = self.policy.clip
        return np.clip(z, -clip, clip), (np.abs(z) > clip).sum(axis=1)

    def encoder_activity(self, z: np.ndarray) -> np.ndarray:
        """Gaussian receptive-field activity, Q15 ``[B, N*P]``."""
        mu, rho = self._encoder
        pop = self.policy.encoder_pop
        d = np.abs(np.repeat(z, pop, axis=1) - mu)
        pos = (d * rho) >> (24 - GAUSS_LUT_STEP_BITS - 8)  # |u| in units of 1/2^(step bits + 8)
        index, frac = pos >> 8, pos & 255
        inside = index < GAUSS_LUT_SIZE - 1
        safe = np.minimum(index, GAUSS_LUT_SIZE - 2)
        value = (_GAUSS[safe] * (256 - frac) + _GAUSS[safe + 1] * frac + 128) >> 8
        return np.where(inside, value, 0)

    def encoder_spikes(self, activity: np.ndarray) -> np.ndarray:
        """Regular spike trains ``[T, B, N*P]`` (0/1 int64)."""
        steps = self.policy.timesteps
        spikes = np.empty((steps, *activity.shape), np.int64)
        accumulator = np.zeros_like(activity)
        for t in range(steps):
            accumulator += activity
            spikes[t] = accumulator > ENCODER_THRESHOLD_Q15
            accumulator -= ENCODER_THRESHOLD_Q15 * spikes[t]
        return spikes

    def layer(self, index: int, in_spikes: np.ndarray) -> np.ndarray:
        """Spikes ``[T, B, F_out]`` of layer ``index`` for input spikes ``[T, B, F_in]``."""
        layer = self.policy.layers[index]
        steps, batch, _ = in_spikes.shape
        synaptic = in_spikes @ self._weights[index]  # [T, B, F_out]
        blocks = self._blocks[index]
        headroom = 1 << self.policy.headroom_bits
        current = np.zeros((batch, layer.fan_out), np.int64)
        voltage = np.zeros_like(current)
        spikes = np.zeros((steps, batch, layer.fan_out), np.int64)
        previous = np.zeros_like(current)
        for t in range(steps):
            drive = synaptic[t]
            if blocks is not None:
                groups, pop, _ = blocks.shape
                recurrent = np.einsum("bgj,gji->bgi", previous.reshape(batch, groups, pop), blocks)
                drive = drive + recurrent.reshape(batch, -1)
            current = rtz(layer.current_decay * current, DECAY_BITS) + drive * headroom + layer.bias
            decayed = rtz(layer.voltage_decay * voltage, DECAY_BITS)
            voltage = np.where(previous != 0, 0, decayed) + current
            spikes[t] = voltage > layer.threshold
            previous = spikes[t]
            self._peak(layer.name, current, voltage)
        return spikes

    def _peak(self, name: str, *states: np.ndarray) -> None:
        peak = max(int(np.abs(state).max(initial=0)) for state in states)
        self.state_peaks[name] = max(self.state_peaks.get(name, 0), peak)

    def readout_voltage(self, out_spikes: np.ndarray) -> np.ndarray:
        """Decoded readout voltage ``[B, M]`` (state units) from output spikes ``[T, B, M*P]``."""
        readout = self.policy.readout
        steps, batch, _ = out_spikes.shape
        grouped = out_spikes.reshape(steps, batch, self.policy.act_dim, -1)
        drive = np.einsum("tbmp,mp->tbm", grouped, self._readout_weight) * (1 << self.policy.headroom_bits)
        voltage = np.zeros((batch, self.policy.act_dim), np.int64)
        total = np.zeros_like(voltage)
        extreme = np.zeros_like(voltage)
        for t in range(steps):
            voltage = rtz(readout.decay * voltage, DECAY_BITS) + drive[t] + readout.bias
            total += voltage
            extreme = np.where(np.abs(voltage) > np.abs(extreme), voltage, extreme)
            self._peak("readout", voltage)
        decoded = {"last": voltage, "mean": total, "max-abs": extreme}[readout.mode]
        self._peak("readout", decoded)
        return decoded

    def squash(self, voltage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Q12 pre-activation, Q15 action)`` from decoded readout voltages ``[B, M]``."""
        z = rhaz(voltage * self.policy.readout.out_mult.astype(np.int64), OUT_SHIFT)
        magnitude = np.abs(z)
        step = Z_FRACTION_BITS - TANH_LUT_STEP_BITS
        index, frac = magnitude >> step, magnitude & ((1 << step) - 1)
        safe = np.minimum(index, TANH_LUT_SIZE - 2)
        value = (_TANH[safe] * ((1 << step) - frac) + _TANH[safe + 1] * frac + (1 << (step - 1))) >> step
        value = np.where(index >= TANH_LUT_SIZE - 1, 32767, value)
        return z, np.where(z < 0, -value, value)

    def __call__(self, obs_q: np.ndarray) -> IntegerStep:
        """Integer inference for int32 Q16.16 observations ``[B, N]`` (or ``[N]``, treated as ``B = 1``)."""
        obs_q = np.atleast_2d(np.asarray(obs_q))
        if obs_q.shape[1] != self.policy.obs_dim or not np.issubdtype(obs_q.dtype, np.integer):
            raise ValueError(
                f"integer observations must be an integer array [B, {self.policy.obs_dim}], "
                f"got {obs_q.dtype} {obs_q.shape}"
            )
        z, saturated = self.normalise(obs_q)
        spikes = self.encoder_spikes(self.encoder_activity(z))
        counts = [spikes.sum(axis=(0, 2))]
        sops = np.zeros(obs_q.shape[0], np.int64)
        for index, layer in enumerate(self.policy.layers):
            sops += counts[-1] * layer.fan_out
            spikes = self.layer(index, spikes)
            counts.append(spikes.sum(axis=(0, 2)))
        sops += counts[-1] * self.policy.out_fan
        pre, actions = self.squash(self.readout_voltage(spikes))
        return IntegerStep(actions, np.stack(counts, axis=1), sops, saturated, pre)
