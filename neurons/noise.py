"""Time-correlated (coloured, 1/f^beta) Gaussian noise that can be regenerated from a few integers.

NoisySAN (docs/methods.md) gives every noisy neuron one continuous coloured-noise sequence per episode, running
across SNN steps and environment steps: at environment step ``k`` and SNN step ``t`` a neuron reads sample
``k * T + t`` of its sequence. To replay that noise in the actor update without storing it (~23 kB per
transition on HalfCheetah), the sequences are *windows of one shared table*:

* :class:`ColouredNoiseTable` holds one long, periodic, unit-variance sequence with power spectral density
  ``S(f) ∝ 1 / max(f, f_min)^beta`` (Timmer & König FFT method, through the ``colorednoise`` package).
  ``f_min = 1 / (horizon * T)`` is the lowest frequency a per-episode draw of ``horizon`` environment steps
  would contain, so a window has the statistics of a fresh per-episode draw.
* Neuron ``j`` of the episode with key ``e`` reads the table from offset ``hash(seed, e, j)`` (SplitMix64),
  wrapping around. A transition therefore needs only ``(episode key, step index)`` — 8 bytes — to regenerate
  all of its noise exactly, in one gather.

Because the table is periodic, every window is a stationary sample of the process. Two neurons' windows
overlap (share samples at a lag) with probability about ``2 * window / size``; with the default
``size = 2**24`` and HalfCheetah's 5,005-sample episodes that is ~6e-4 per pair.
"""

from __future__ import annotations

import colorednoise
import numpy as np
import torch
from numba import njit

DEFAULT_TABLE_SIZE = 2**24


@njit(cache=True, inline="always")
def _splitmix64(x):  # pragma: no cover - compiled
    """SplitMix64 finaliser on ``uint64`` (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _gather_windows(table, seed, episodes, steps, steps_per_env_step, out):  # pragma: no cover - compiled
    """``out[t, b, j] = table[(offset(seed, episodes[b], j) + steps[b] * T + t) mod size]`` (size a power of 2).

    The window starts of a row are hashed first, then gathered one SNN step at a time across all neurons:
    a tight loop of independent loads lets the CPU overlap the cache misses into the large table (4x faster
    at batch 100 than gathering window by window).
    """
    mask = np.uint64(table.shape[0] - 1)
    width = out.shape[2]
    starts = np.empty(width, np.uint64)
    for b in range(out.shape[1]):
        episode_key = _splitmix64(seed ^ episodes[b])
        base = np.uint64(steps[b]) * np.uint64(steps_per_env_step)
        for j in range(width):
            starts[j] = _splitmix64(episode_key + np.uint64(j)) + base
        for t in range(out.shape[0]):
            row = out[t, b]
            for j in range(width):
                row[j] = table[(starts[j] + np.uint64(t)) & mask]


class ColouredNoiseTable:
    """A periodic unit-variance 1/f^beta sequence and keyed windows into it.

    Args:
        beta: spectral exponent (0 white, 1 pink, 2 brown).
        steps_per_env_step: ``T``, noise samples consumed per environment step.
        horizon: environment steps of a typical episode; sets the low-frequency cutoff ``1 / (horizon * T)``.
        size: table length in samples, a power of two (float32, so ``4 * size`` bytes).
        seed: seed of the table and of the window offsets.
    """

    def __init__(
        self, beta: float, steps_per_env_step: int, horizon: int = 1000, size: int = DEFAULT_TABLE_SIZE, seed: int = 0
    ) -> None:
        if beta < 0:
            raise ValueError(f"noise beta must be >= 0, got {beta}")
        if steps_per_env_step < 1 or horizon < 1:
            raise ValueError(f"steps_per_env_step and horizon must be >= 1, got {steps_per_env_step}, {horizon}")
        window = steps_per_env_step * horizon
        if size < 1 or size & (size - 1):
            raise ValueError(f"noise table size must be a power of two, got {size}")
        if size < 4 * window:
            raise ValueError(f"noise table size {size} is too small for episodes of {window} samples (>= {4 * window})")
        self.beta = float(beta)
        self.steps = steps_per_env_step
        self.horizon = horizon
        self.size = size
        self.seed = seed
        min_frequency = min(0.5, 1.0 / window)
        rng = np.random.default_rng([seed, 0x6E6F697365])  # "noise"
        table = colorednoise.powerlaw_psd_gaussian(beta, size, fmin=min_frequency, random_state=rng)
        self.table = table.astype(np.float32)

    def windows(self, episodes: np.ndarray, steps: np.ndarray, width: int) -> torch.Tensor:
        """The noise of environment step ``steps[b]`` of episode ``episodes[b]`` for ``width`` neurons.

        Args:
            episodes: episode keys ``[B]`` (non-negative integers).
            steps: environment-step index within the episode ``[B]``.
            width: number of noise channels (neurons).

        Returns:
            float32 tensor ``[T, B, width]``: entry ``[t, b, j]`` is sample ``steps[b] * T + t`` of channel ``j``.
        """
        episodes, steps = np.asarray(episodes), np.asarray(steps)
        if episodes.shape != steps.shape or episodes.ndim != 1:
            raise ValueError(f"episodes and steps must be matching 1-d arrays, got {episodes.shape} and {steps.shape}")
        if episodes.size and (episodes.min() < 0 or steps.min() < 0):
            raise ValueError("episode keys and step indices must be non-negative")
        out = np.empty((self.steps, episodes.size, width), np.float32)
        _gather_windows(
            self.table, np.uint64(self.seed), episodes.astype(np.uint64), steps.astype(np.uint64), self.steps, out
        )
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"ColouredNoiseTable(beta={self.beta}, steps_per_env_step={self.steps}, size={self.size})"
