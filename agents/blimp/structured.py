"""Structured genome of the blimp SNN: per-pair genes with the sign-pair symmetry built in (``network.genome:
structured``; docs/blimp.md, "Structured genome").

The full genome (:class:`agents.blimp.snn.SNNArchitecture`, 361 genes for 40 hidden neurons) gives every neuron its
own decay and threshold and every 2×2 hidden block four free weights. Integration in the hidden synaptic currents
needs each block balanced: at zero error both encoding neurons of a pair fire at the same rate ``r``, so a block
``[[a, b], [c, d]]`` drives its hidden neurons with ``(a + b) r`` and ``(c + d) r`` per tick, which a non-leaky
synapse (``τ_syn = 1``) integrates without bound unless ``a + b = c + d = 0`` to about 1 %. A global CMA-ES step
cannot keep four independent weights that close, so this genome ties them. With ``K = N/2`` pairs, pair ``k``:

* encoding pair: weight ``±w_k``, bias ``b_k``, one ``τ_mem`` and one ``ϑ`` for both neurons;
* hidden pair: the block ``[[a_k, -a_k], [-a_k, a_k]]`` (one gain ``a_k``), one ``τ_syn``, ``τ_mem`` and ``ϑ``;
* readout ``(+d_k, -d_k)``; one readout retention ``τ_d`` for the network.

That is ``9K + 1`` genes (181 for K = 20), every one inside the bounds of the paper's Table I, and the expanded
network is the paper's LIF network itself (recurrent and threshold-adaptation weights, if the variant has them, are
zero). Each pair is antisymmetric: a zero error gives the two hidden neurons of a pair equal and opposite drive that
cancels, so any ``τ_syn`` up to 1 is safe to search. Per-gene initial step sizes (pycma ``CMA_stds``) are given in
units of ``evolution.sigma0``: the hidden gain lives on a far smaller scale (an integrator needs ``|a_k|`` of about
0.005 on a range of 4) than the other genes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.blimp.snn import ParameterBlock, SNNArchitecture

GENOME_KINDS = ("full", "structured", "shared")
GAIN_STEP = 0.05  # initial step of the hidden gains relative to sigma0 (0.1 x 0.05 x range 4 = 0.02 weight units)


@dataclass(frozen=True)
class StructuredGene:
    """One per-pair (or per-network) gene block: ``block`` gives bounds and init range; ``step`` is its
    ``CMA_stds`` factor."""

    block: ParameterBlock
    step: float = 1.0


class FullGenome:
    """The identity map: CMA-ES searches the architecture's own normalised genome ``[D]``."""

    def __init__(self, architecture: SNNArchitecture) -> None:
        self.arch = architecture

    @property
    def size(self) -> int:
        return self.arch.size

    def expand(self, genes: np.ndarray) -> np.ndarray:
        """Search genomes ``[P, G]`` -> full normalised genomes ``[P, D]`` (here G = D, unchanged)."""
        return np.atleast_2d(np.asarray(genes, dtype=np.float64))

    def initial_genome(self, rng: np.random.Generator) -> np.ndarray:
        return self.arch.initial_genome(rng)

    def steps(self) -> np.ndarray | None:
        """Per-gene ``CMA_stds`` factors ``[G]``, or ``None`` for a uniform step."""
        return None


class StructuredGenome:
    """Per-pair genome of :mod:`this module <agents.blimp.structured>` for a network of ``architecture``'s size.

    Args:
        architecture: the network the genes expand to (``readout_decay_max`` bounds ``τ_d``).
    """

    def __init__(self, architecture: SNNArchitecture) -> None:
        self.arch = architecture
        k, td = architecture.hidden // 2, architecture.readout_decay_max
        self.genes = [
            StructuredGene(ParameterBlock("enc_weight", (k,), -2.0, 2.0, 1.0, 1.5)),
            StructuredGene(ParameterBlock("enc_bias", (k,), -1.0, 1.0, 0.2, 0.5)),
            StructuredGene(ParameterBlock("enc_mem_decay", (k,), 0.0, 1.0, 0.1, 0.9)),
            StructuredGene(ParameterBlock("enc_threshold", (k,), 0.0, 10.0, 0.8, 1.2)),
            StructuredGene(ParameterBlock("hid_gain", (k,), -2.0, 2.0, -0.25, 0.25), GAIN_STEP),
            StructuredGene(ParameterBlock("hid_syn_decay", (k,), 0.0, 1.0, 0.1, 0.9)),
            StructuredGene(ParameterBlock("hid_mem_decay", (k,), 0.0, 1.0, 0.1, 0.9)),
            StructuredGene(ParameterBlock("hid_threshold", (k,), 0.0, 10.0, 0.8, 1.2)),
            StructuredGene(ParameterBlock("dec_weight", (k,), -1.0, 1.0, 0.2, 0.6)),
            StructuredGene(ParameterBlock("dec_decay", (1,), 0.0, td, 0.85 * td, 0.95 * td)),
        ]

    @property
    def size(self) -> int:
        """Number of search genes G = 9 K + 1."""
        return sum(g.block.size for g in self.genes)

    def steps(self) -> np.ndarray:
        """Per-gene ``CMA_stds`` factors ``[G]`` (multiplied by ``sigma0`` in normalised units)."""
        return np.concatenate([np.full(g.block.size, g.step) for g in self.genes])

    def initial_genome(self, rng: np.random.Generator) -> np.ndarray:
        """Activity-preserving start ``[G]`` in normalised units, drawn from each gene's init range (the ranges of the
        full genome's start; synaptic decays U[0.1, 0.9], so the start does not integrate)."""
        parts = []
        for gene in self.genes:
            b = gene.block
            parts.append((rng.uniform(b.init_low, b.init_high, b.shape).reshape(-1) - b.low) / (b.high - b.low))
        return np.concatenate(parts)

    def values(self, genes: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised search genes ``[P, G]`` (clipped to [0, 1]) -> per-pair values ``{name: [P, *shape]}``."""
        x = np.atleast_2d(np.asarray(genes, dtype=np.float64))
        if x.shape[1] != self.size:
            raise ValueError(f"structured genomes must have shape [P, {self.size}], got {tuple(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("structured genomes contain NaN or infinite values")
        x = x.clip(0.0, 1.0)
        out, start = {}, 0
        for gene in self.genes:
            b = gene.block
            out[b.name] = b.low + x[:, start : start + b.size].reshape(len(x), *b.shape) * (b.high - b.low)
            start += b.size
        return out

    def expand(self, genes: np.ndarray) -> np.ndarray:
        """Search genes ``[P, G]`` -> full normalised genomes ``[P, D]`` of the architecture."""
        v = self.values(genes)
        population, k = len(v["enc_weight"]), self.arch.hidden // 2
        sign = np.array([[1.0, -1.0], [-1.0, 1.0]])

        def per_neuron(name: str) -> np.ndarray:
            return np.repeat(v[name], 2, axis=1)

        full = {
            "enc_weight": v["enc_weight"],
            "enc_bias": v["enc_bias"],
            "enc_mem_decay": per_neuron("enc_mem_decay"),
            "enc_threshold": per_neuron("enc_threshold"),
            "hid_weight": v["hid_gain"][:, :, None, None] * sign,
            "hid_syn_decay": per_neuron("hid_syn_decay"),
            "hid_mem_decay": per_neuron("hid_mem_decay"),
            "hid_threshold": per_neuron("hid_threshold"),
            "dec_weight": (v["dec_weight"][:, :, None] * np.array([1.0, -1.0])).reshape(population, 2 * k),
            "dec_decay": v["dec_decay"],
        }
        parts = []
        for block in self.arch.blocks():
            values = full.get(block.name, np.zeros((population, *block.shape)))
            parts.append(((values - block.low) / (block.high - block.low)).reshape(population, -1))
        return np.concatenate(parts, axis=1)


class SharedGenome(StructuredGenome):
    """The structured genome with every per-pair parameter drawn from two genes shared by all pairs: a centre and a
    spread, ``x_k = clip(c + (2 s - 1) u_k / 2, 0, 1)`` in normalised units with ``u_k`` evenly spaced in [-1, 1]
    over the pairs (``s = 0.5``: identical pairs; the spread keeps pairs from firing in lockstep). That is
    ``2 · 9 + 1 = 19`` genes for any network size; the expanded network is the same LIF network.
    """

    @property
    def size(self) -> int:
        return sum(2 if g.block.size > 1 else 1 for g in self.genes)

    def steps(self) -> np.ndarray:
        return np.concatenate([np.full(2 if g.block.size > 1 else 1, g.step) for g in self.genes])

    def initial_genome(self, rng: np.random.Generator) -> np.ndarray:
        """Centres drawn from each gene's init range, spreads giving ±10 % of that range over the pairs."""
        parts = []
        for gene in self.genes:
            b = gene.block
            centre = (rng.uniform(b.init_low, b.init_high) - b.low) / (b.high - b.low)
            if b.size == 1:
                parts.append([centre])
            else:
                parts.append([centre, 0.5 + 0.1 * (b.init_high - b.init_low) / (b.high - b.low)])
        return np.concatenate(parts)

    def values(self, genes: np.ndarray) -> dict[str, np.ndarray]:
        x = np.atleast_2d(np.asarray(genes, dtype=np.float64))
        if x.shape[1] != self.size:
            raise ValueError(f"shared genomes must have shape [P, {self.size}], got {tuple(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("shared genomes contain NaN or infinite values")
        x = x.clip(0.0, 1.0)
        out, start = {}, 0
        for gene in self.genes:
            b = gene.block
            if b.size == 1:
                norm, start = x[:, start : start + 1], start + 1
            else:
                u = np.linspace(-1.0, 1.0, b.size)
                centre, spread = x[:, start : start + 1], x[:, start + 1 : start + 2]
                norm, start = (centre + (2 * spread - 1) * u / 2).clip(0.0, 1.0), start + 2
            out[b.name] = b.low + norm.reshape(len(x), *b.shape) * (b.high - b.low)
        return out


SearchSpace = FullGenome | StructuredGenome  # what network.genome names (SharedGenome is a StructuredGenome)


class JointGenome:
    """Two networks searched as one genome (``fitness.coevolve``): the evolving network's search genes ``[G1]``
    followed by its partner's ``[G2]``, each in its own search space. :meth:`expand` gives both full genomes side
    by side, ``[P, D1 + D2]``, the evolving network's first.
    """

    def __init__(self, own: SearchSpace, partner: SearchSpace) -> None:
        self.own, self.partner = own, partner

    @property
    def size(self) -> int:
        return self.own.size + self.partner.size

    def split(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint search genes ``[P, G1 + G2]`` -> the two networks' search genes ``([P, G1], [P, G2])``."""
        x = np.atleast_2d(np.asarray(genes, dtype=np.float64))
        if x.shape[1] != self.size:
            raise ValueError(f"joint genomes must have shape [P, {self.size}], got {tuple(x.shape)}")
        return x[:, : self.own.size], x[:, self.own.size :]

    def expand(self, genes: np.ndarray) -> np.ndarray:
        own, partner = self.split(genes)
        return np.concatenate([self.own.expand(own), self.partner.expand(partner)], axis=1)

    def steps(self) -> np.ndarray:
        """Each part's ``CMA_stds`` factors (1 where a part has a uniform step), ``[G1 + G2]``."""
        steps = [(space.steps(), space.size) for space in (self.own, self.partner)]
        return np.concatenate([np.ones(size) if step is None else step for step, size in steps])


def genome_map(kind: str, architecture: SNNArchitecture) -> SearchSpace:
    """The search space ``kind`` (``full``, ``structured`` or ``shared``) of ``architecture``."""
    if kind == "full":
        return FullGenome(architecture)
    if kind == "structured":
        return StructuredGenome(architecture)
    if kind == "shared":
        return SharedGenome(architecture)
    raise ValueError(f"unknown genome {kind!r}; valid: {', '.join(GENOME_KINDS)}")
