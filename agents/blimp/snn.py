"""The evolved blimp SNN (Burgers et al. 2023): paired-sign encoding LIF layer -> hidden LIF layer -> one
non-spiking leaky-integrator readout, evaluated for a whole CMA-ES population at once.

Layers (N hidden neurons, N encoding neurons in N/2 sign pairs; every decay is a retention factor)::

    encoding   I = ±w e + b (pairs), τ_syn = 0, soft-reset LIF (τ_mem, ϑ)
    hidden     I = blockdiag(W_h) s_enc   (one free 2x2 block per encoding pair -> hidden pair)
               [+ W_r s_hid(t-1)]          recurrent variants
               [ϑ(t) = ϑ_base + W_th a(t), a = τ_th a + s_enc]   IWTA variants
               soft-reset CUBA LIF (τ_syn, τ_mem, ϑ)
    readout    y(t) = τ_d y(t-1) + (1 - τ_d) W_d · s_hid(t)    (the motor command, code units)

A genome is a vector in [0, 1]^D (CMA-ES works in this normalised space); :meth:`SNNArchitecture.decode` maps it
to the bounded parameters of the paper's Table I. Batched evaluation (``[P, D]`` genomes) equals the loop over
individuals exactly: every operation is per-individual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from neurons.paired_encoding import paired_encoding_current
from neurons.soft_lif import SoftLIFState, soft_lif_step
from neurons.threshold_adaptation import adapt_threshold

HIDDEN_VARIANTS = ("lif", "recurrent", "iwta", "recurrent-iwta")
DTYPE = torch.float64


@dataclass(frozen=True)
class ParameterBlock:
    """One named parameter tensor of the genome: per-individual ``shape``, bounds, and the initialisation range
    of the activity-preserving start ("range" initialisation, docs/blimp.md, Evolution)."""

    name: str
    shape: tuple[int, ...]
    low: float
    high: float
    init_low: float
    init_high: float

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SNNArchitecture:
    """Shape of one controller network.

    Args:
        hidden: hidden neurons N (even; the encoding layer has N neurons too).
        variant: ``lif``, ``recurrent``, ``iwta`` or ``recurrent-iwta``.
        readout_decay_max: upper bound of the readout retention τ_d (0.3 for the I controller, else 1).
    """

    hidden: int = 40
    variant: str = "lif"
    readout_decay_max: float = 1.0

    def __post_init__(self) -> None:
        if self.variant not in HIDDEN_VARIANTS:
            raise ValueError(f"unknown hidden variant {self.variant!r}; valid: {', '.join(HIDDEN_VARIANTS)}")
        if self.hidden < 2 or self.hidden % 2:
            raise ValueError(f"hidden must be an even number >= 2, got {self.hidden}")
        if not 0 < self.readout_decay_max <= 1:
            raise ValueError(f"readout_decay_max must be in (0, 1], got {self.readout_decay_max}")

    @property
    def recurrent(self) -> bool:
        return "recurrent" in self.variant

    @property
    def iwta(self) -> bool:
        return "iwta" in self.variant

    def blocks(self) -> list[ParameterBlock]:
        n, k = self.hidden, self.hidden // 2
        td = self.readout_decay_max
        blocks = [
            ParameterBlock("enc_weight", (k,), -2.0, 2.0, 1.0, 1.5),
            ParameterBlock("enc_bias", (k,), -1.0, 1.0, 0.2, 0.5),
            ParameterBlock("enc_mem_decay", (n,), 0.0, 1.0, 0.1, 0.9),
            ParameterBlock("enc_threshold", (n,), 0.0, 10.0, 0.8, 1.2),
            ParameterBlock("hid_weight", (k, 2, 2), -2.0, 2.0, -0.25, 0.25),  # diagonal re-drawn in U[1, 1.5]
            ParameterBlock("hid_syn_decay", (n,), 0.0, 1.0, 0.1, 0.9),
            ParameterBlock("hid_mem_decay", (n,), 0.0, 1.0, 0.1, 0.9),
            ParameterBlock("hid_threshold", (n,), 0.0, 10.0, 0.8, 1.2),
        ]
        if self.recurrent:
            blocks.append(ParameterBlock("rec_weight", (n, n), -1.0, 1.0, -0.1, 0.1))
        if self.iwta:
            blocks.append(ParameterBlock("th_decay", (n,), 0.0, 1.0, 0.1, 0.9))
            blocks.append(ParameterBlock("th_weight", (n, n), -1.0, 1.0, -0.1, 0.1))
        blocks.append(ParameterBlock("dec_weight", (n,), -1.0, 1.0, 0.2, 0.6))  # signs alternate per pair
        blocks.append(ParameterBlock("dec_decay", (1,), 0.0, td, 0.85 * td, 0.95 * td))
        return blocks

    @property
    def size(self) -> int:
        """Genome length D."""
        return sum(b.size for b in self.blocks())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-gene lower and upper bounds ``[D]`` in parameter units."""
        low = np.concatenate([np.full(b.size, b.low) for b in self.blocks()])
        high = np.concatenate([np.full(b.size, b.high) for b in self.blocks()])
        return low, high

    def initial_genome(self, rng: np.random.Generator) -> np.ndarray:
        """Activity-preserving start ``[D]`` in normalised [0, 1] units: encoding/hidden weights U[1, 1.5] (hidden
        2x2 blocks: diagonal, off-diagonal U[-0.25, 0.25]), biases U[0.2, 0.5], decays U[0.1, 0.9], thresholds
        U[0.8, 1.2], readout weights ±U[0.2, 0.6] paired with opposite signs, readout retention near 0.9 τ_d,max."""
        parts = []
        for block in self.blocks():
            values = rng.uniform(block.init_low, block.init_high, block.shape)
            if block.name == "hid_weight":
                values[:, [0, 1], [0, 1]] = rng.uniform(1.0, 1.5, (block.shape[0], 2))
            if block.name == "dec_weight":
                values[1::2] *= -1.0
            parts.append((values.reshape(-1) - block.low) / (block.high - block.low))
        return np.concatenate(parts)

    def encode(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """Parameter values ``{name: [*shape]}`` (one individual, every block) -> normalised genome ``[D]``."""
        missing = [b.name for b in self.blocks() if b.name not in params]
        if missing:
            raise ValueError(f"missing parameter block(s): {', '.join(missing)}")
        parts = []
        for block in self.blocks():
            values = np.asarray(params[block.name], dtype=np.float64)
            if values.shape != block.shape:
                raise ValueError(f"{block.name} must have shape {block.shape}, got {values.shape}")
            parts.append((values.reshape(-1) - block.low) / (block.high - block.low))
        return np.concatenate(parts)

    def decode(self, genomes: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """Normalised genomes ``[P, D]`` (clipped to [0, 1]) -> parameter tensors ``{name: [P, *shape]}``."""
        x = torch.as_tensor(np.asarray(genomes), dtype=DTYPE)
        if x.dim() != 2 or x.shape[1] != self.size:
            raise ValueError(f"genomes must have shape [P, {self.size}] for {self.variant}, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("genomes contain NaN or infinite values")
        x = x.clamp(0.0, 1.0)
        params, start = {}, 0
        for block in self.blocks():
            chunk = x[:, start : start + block.size].reshape(x.shape[0], *block.shape)
            params[block.name] = block.low + chunk * (block.high - block.low)
            start += block.size
        return params


class SNNPopulation:
    """State and parameters of P controller networks, stepped together; outputs in code units.

    Args:
        architecture: the network shape.
        genomes: normalised genomes ``[P, D]``.
    """

    def __init__(self, architecture: SNNArchitecture, genomes: torch.Tensor | np.ndarray) -> None:
        self.arch = architecture
        p = architecture.decode(genomes)
        self.params = p
        self.population = p["enc_weight"].shape[0]
        self.enc_weight, self.enc_bias = p["enc_weight"], p["enc_bias"]
        self.hid_weight = p["hid_weight"]
        self.dec_gain = (1.0 - p["dec_decay"]) * p["dec_weight"]  # [P, N]
        self.reset()

    def reset(self) -> None:
        """Zero every state (voltages, currents, traces, readout) and the spike counters."""
        n = self.arch.hidden
        self.encoding = SoftLIFState.zeros(self.population, n)
        self.hidden = SoftLIFState.zeros(self.population, n)
        self.trace = torch.zeros(self.population, n, dtype=DTYPE)
        self.output = torch.zeros(self.population, dtype=DTYPE)
        self.spike_counts = {
            "encoding": torch.zeros(self.population, dtype=DTYPE),
            "hidden": torch.zeros_like(self.output),
        }
        self.ticks = 0

    def _tick(self, encoding_current: torch.Tensor) -> torch.Tensor:
        p = self.params
        s_enc = soft_lif_step(self.encoding, encoding_current, p["enc_mem_decay"], p["enc_threshold"])
        pairs = s_enc.view(self.population, -1, 1, 2)
        hidden_current = (self.hid_weight * pairs).sum(-1).reshape(self.population, -1)
        if self.arch.recurrent:
            hidden_current = hidden_current + torch.bmm(p["rec_weight"], self.hidden.spikes.unsqueeze(-1)).squeeze(-1)
        threshold = p["hid_threshold"]
        if self.arch.iwta:
            self.trace, threshold = adapt_threshold(self.trace, s_enc, p["th_decay"], p["th_weight"], threshold)
        s_hid = soft_lif_step(self.hidden, hidden_current, p["hid_mem_decay"], threshold, p["hid_syn_decay"])
        decay = p["dec_decay"][:, 0]
        self.output = decay * self.output + (self.dec_gain * s_hid).sum(-1)
        self.spike_counts["encoding"] += s_enc.sum(-1)
        self.spike_counts["hidden"] += s_hid.sum(-1)
        self.ticks += 1
        return self.output

    def step(self, error: torch.Tensor | float) -> torch.Tensor:
        """One control tick: error (m), scalar or ``[P]`` -> command ``[P]`` (code units)."""
        signal = torch.as_tensor(error, dtype=DTYPE).reshape(1, -1)
        current = paired_encoding_current(signal, self.enc_weight, self.enc_bias)[0]
        return self._tick(current)

    def run(self, errors: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Open-loop sequence from the current state: errors ``[T]`` (shared) or ``[T, P]`` -> commands ``[T, P]``."""
        signal = torch.as_tensor(np.asarray(errors), dtype=DTYPE)
        currents = paired_encoding_current(signal, self.enc_weight, self.enc_bias)
        out = torch.empty(signal.shape[0], self.population, dtype=DTYPE)
        for t in range(signal.shape[0]):
            out[t] = self._tick(currents[t])
        return out

    def firing_rates(self) -> dict[str, torch.Tensor]:
        """Mean spikes per neuron per tick since :meth:`reset`, per layer, ``[P]``."""
        ticks = max(self.ticks, 1)
        return {name: count / (ticks * self.arch.hidden) for name, count in self.spike_counts.items()}

    def synaptic_operations(self) -> torch.Tensor:
        """Spike-triggered accumulates since :meth:`reset`, ``[P]``: each encoding spike reaches its 2x2 block (2)
        and, with IWTA, N threshold weights; each hidden spike reaches the readout (1) and, if recurrent, N neurons."""
        n = self.arch.hidden
        enc_fanout = 2 + (n if self.arch.iwta else 0)
        hid_fanout = 1 + (n if self.arch.recurrent else 0)
        return self.spike_counts["encoding"] * enc_fanout + self.spike_counts["hidden"] * hid_fanout


def imitation_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fitness of the paper: MAE(u, û) + (1 - Pearson ρ(u, û)) per individual.

    Args:
        outputs: ``[T, P]`` network commands.
        target: ``[T]`` target commands.

    Returns:
        ``[P]`` losses; a constant output has ρ = 0.
    """
    target = torch.as_tensor(np.asarray(target), dtype=outputs.dtype)
    mae = (outputs - target[:, None]).abs().mean(0)
    du = outputs - outputs.mean(0)
    dt = target - target.mean()
    denominator = torch.sqrt((du * du).sum(0) * (dt * dt).sum())
    rho = torch.where(denominator > 0, (du * dt[:, None]).sum(0) / denominator.clamp_min(1e-300), 0.0)
    return mae + 1.0 - rho
