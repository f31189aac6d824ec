"""Configuration of an SNN evolution run, loaded from YAML with the project's typed, unknown-key-rejecting loader.

A config has four sections, each optional::

    network:   {hidden: 40, variant: lif, readout_decay_max: 1.0, genome: full}
    data:      {target: pd, train_windows: 100, window_s: 80, test_s: 500, seed: 0, kp: 9, ki: 0.75, kd: 14,
               net_weight: 0.07}
    evolution: {generations: 2000, popsize: 50, sigma0: 0.1, seed: 0, diagonal: false, test_every: 25, ...}
    fitness:   {kind: imitation, partner: null, init: null, steady_state_weight: 1.0, overshoot_weight: 0.0,
               flip_weight: 0.0}

``network.genome: structured`` searches the per-pair genome of :mod:`agents.blimp.structured` (balanced 2×2 blocks,
9 K + 1 genes) instead of every parameter of the network; ``best.npz`` keeps the expanded full genome either way.

``fitness.init`` starts CMA-ES from another run's best genome (a run directory) or, with ``integrator``, from the
hand-set integrating network of :mod:`agents.blimp.integrator` with gain ``data.ki``.

``fitness.kind: closed-loop`` flies the MuJoCo blimp instead of imitating a dataset
(:mod:`agents.blimp.closed_loop`); then ``data.train_windows`` is the number of training flights, ``window_s`` /
``test_s`` their lengths, ``seed`` their seed and ``net_weight`` the ΔW range, and ``fitness.partner`` names the
evolution run whose best net is summed with the evolving one (the SNN-PD when an I net evolves).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.blimp.datasets import TARGETS
from agents.blimp.pid import PIDGains
from agents.blimp.snn import HIDDEN_VARIANTS, SNNArchitecture
from agents.blimp.structured import GENOME_KINDS, FullGenome, StructuredGenome, genome_map
from envs.blimp.profiles import I_TRAINING_NET_WEIGHT
from experiments.config import ConfigError, build_config, read_config_data


@dataclass
class NetworkConfig:
    hidden: int = 40
    variant: str = "lif"
    readout_decay_max: float = 1.0
    genome: str = "full"  # "structured": per-pair genes with balanced 2x2 blocks (agents/blimp/structured.py)

    def __post_init__(self) -> None:
        if self.variant not in HIDDEN_VARIANTS:
            raise ConfigError(f"network.variant: unknown {self.variant!r}; valid: {', '.join(HIDDEN_VARIANTS)}")
        if self.genome not in GENOME_KINDS:
            raise ConfigError(f"network.genome: unknown {self.genome!r}; valid: {', '.join(GENOME_KINDS)}")
        self.architecture()  # validates the rest

    def architecture(self) -> SNNArchitecture:
        return SNNArchitecture(self.hidden, self.variant, self.readout_decay_max)

    def search_space(self) -> FullGenome | StructuredGenome:
        """The genome CMA-ES searches (expands to the architecture's full genome)."""
        return genome_map(self.genome, self.architecture())


MAX_NET_WEIGHT = 0.2  # N: beyond this the blimp cannot hover (max thrust) and the I flights land or hit the ceiling


@dataclass
class DataConfig:
    target: str = "pd"
    train_windows: int = 100
    window_s: float = 80.0
    test_s: float = 500.0
    seed: int = 0
    kp: float = 9.0
    ki: float = 0.75
    kd: float = 14.0
    net_weight: float = I_TRAINING_NET_WEIGHT  # N, I set only: ΔW ~ U(-net_weight, net_weight) per set-point

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"data.target: unknown {self.target!r}; valid: {', '.join(TARGETS)}")
        if self.train_windows < 1:
            raise ConfigError(f"data.train_windows must be >= 1, got {self.train_windows}")
        for key in ("window_s", "test_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"data.{key} must be > 0, got {getattr(self, key)}")
        if not 0 <= self.net_weight <= MAX_NET_WEIGHT:
            raise ConfigError(f"data.net_weight must be in [0, {MAX_NET_WEIGHT}] N, got {self.net_weight}")

    @property
    def gains(self) -> PIDGains:
        return PIDGains(self.kp, self.ki, self.kd)


@dataclass
class EvolutionConfig:
    generations: int = 2000
    popsize: int = 50
    sigma0: float = 0.1  # in normalised units: range / 10, as the paper
    seed: int = 0
    diagonal: bool = False  # sep-CMA-ES (needed for the N x N variants' 2k-3.6k genes)
    min_std: float = 0.0  # floor of every coordinate's step (pycma ``minstd``) against premature σ collapse
    test_every: int = 25
    checkpoint_every: int = 50
    workers: int = 1  # > 1: Ray actors share each generation's evaluations
    num_threads: int = 1
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.generations < 0:  # 0: only score and keep the start genome (e.g. fitness.init: integrator)
            raise ConfigError(f"evolution.generations must be >= 0, got {self.generations}")
        for key in ("popsize", "test_every", "checkpoint_every", "workers", "num_threads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"evolution.{key} must be >= 1, got {getattr(self, key)}")
        if self.popsize < 4:
            raise ConfigError(f"evolution.popsize must be >= 4, got {self.popsize}")
        if not 0 < self.sigma0 <= 1:
            raise ConfigError(f"evolution.sigma0 must be in (0, 1], got {self.sigma0}")
        if not 0 <= self.min_std < self.sigma0:
            raise ConfigError(f"evolution.min_std must be in [0, sigma0), got {self.min_std}")


FITNESS_KINDS = ("imitation", "closed-loop")
INTEGRATOR_INIT = "integrator"  # fitness.init keyword: the hand-set integrator of agents.blimp.integrator


@dataclass
class FitnessConfig:
    kind: str = "imitation"
    partner: str | None = None  # closed-loop: evolution run whose best network's command is added (e.g. the SNN-PD)
    init: str | None = None  # a run directory (its best genome) or "integrator" instead of the activity-preserving init
    steady_state_weight: float = 1.0  # closed-loop: loss = tracking MAE + this x steady-state error
    overshoot_weight: float = 0.0  # closed-loop: + this x mean overshoot per step (m)
    flip_weight: float = 0.0  # closed-loop: + this x servo flips per minute of flight

    def __post_init__(self) -> None:
        if self.kind not in FITNESS_KINDS:
            raise ConfigError(f"fitness.kind: unknown {self.kind!r}; valid: {', '.join(FITNESS_KINDS)}")
        if self.partner is not None and self.kind != "closed-loop":
            raise ConfigError("fitness.partner only applies to fitness.kind: closed-loop")
        for key in ("steady_state_weight", "overshoot_weight", "flip_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"fitness.{key} must be >= 0, got {getattr(self, key)}")
        if (self.overshoot_weight or self.flip_weight) and self.kind != "closed-loop":
            raise ConfigError("fitness.overshoot_weight and flip_weight only apply to fitness.kind: closed-loop")


@dataclass
class EvolveConfig:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evolve_config_from_dict(data: dict[str, Any]) -> EvolveConfig:
    return build_config(EvolveConfig, data)


def load_evolve_config(path: str | Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> EvolveConfig:
    """Config from an optional YAML file with ``{section: {key: value}}`` overrides on top."""
    return evolve_config_from_dict(read_config_data(path, overrides))
