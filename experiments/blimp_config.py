"""Configuration of an SNN evolution run, loaded from YAML into pydantic models (:mod:`experiments.config`).

A config has four sections, each optional::

    network:   {hidden: 40, variant: lif, readout_decay_max: 1.0, genome: full}
    data:      {target: pd, train_windows: 100, window_s: 80, test_s: 500, seed: 0, kp: 9, ki: 0.75, kd: 14,
               net_weight: 0.07}
    evolution: {generations: 2000, popsize: 50, sigma0: 0.1, seed: 0, diagonal: false, test_every: 25, ...}
    fitness:   {kind: imitation, partner: null, init: null, steady_state_weight: 1.0, overshoot_weight: 0.0,
               flip_weight: 0.0, coevolve: false}

``network.genome: structured`` searches the per-pair genome of :mod:`agents.blimp.structured` (balanced 2×2 blocks,
9 K + 1 genes) instead of every parameter of the network; ``best.npz`` keeps the expanded full genome either way.

``fitness.init`` starts CMA-ES from another run's best genome (a run directory) or, with ``integrator``, from the
hand-set integrating network of :mod:`agents.blimp.integrator` with gain ``data.ki``.

``fitness.kind: closed-loop`` flies the MuJoCo blimp instead of imitating a dataset
(:mod:`agents.blimp.closed_loop`); then ``data.train_windows`` is the number of training flights, ``window_s`` /
``test_s`` their lengths, ``seed`` their seed and ``net_weight`` the ΔW range, and ``fitness.partner`` names the
evolution run whose best net is summed with the evolving one (the SNN-PD when an I net evolves), or a part of the
deployed PID instead of a network: ``pid-i``, its exact I term with gain ``data.ki`` (to tune an SNN-PD against an
ideal integrator), or ``pid-pd``, its PD part with ``data.kp`` and ``data.kd`` (to tune an SNN-I). With
``fitness.coevolve: true`` the partner evolves too: CMA-ES searches both networks' genes as one genome (the
partner's start is its run's best), and the run keeps the partner's evolved network as a run of its own in
``RUN_DIR/partner``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from agents.blimp.datasets import TARGETS
from agents.blimp.pid import PIDGains
from agents.blimp.snn import HIDDEN_VARIANTS, SNNArchitecture
from agents.blimp.structured import GENOME_KINDS, FullGenome, StructuredGenome, genome_map
from envs.blimp.profiles import I_TRAINING_NET_WEIGHT
from experiments.config import Count, Section


class NetworkConfig(Section, title="network"):
    hidden: int = 40
    variant: Literal[HIDDEN_VARIANTS] = "lif"
    readout_decay_max: float = 1.0
    genome: Literal[GENOME_KINDS] = "full"  # structured: per-pair genes, balanced 2x2 blocks (agents/blimp/structured)

    @model_validator(mode="after")
    def _check_architecture(self) -> NetworkConfig:
        self.architecture()  # validates the rest
        return self

    def architecture(self) -> SNNArchitecture:
        return SNNArchitecture(self.hidden, self.variant, self.readout_decay_max)

    def search_space(self) -> FullGenome | StructuredGenome:
        """The genome CMA-ES searches (expands to the architecture's full genome)."""
        return genome_map(self.genome, self.architecture())


MAX_NET_WEIGHT = 0.2  # N: beyond this the blimp cannot hover (max thrust) and the I flights land or hit the ceiling


class DataConfig(Section, title="data"):
    target: Literal[TARGETS] = "pd"
    train_windows: Count = 100
    window_s: float = Field(80.0, gt=0)
    test_s: float = Field(500.0, gt=0)
    seed: int = 0
    kp: float = 9.0
    ki: float = 0.75
    kd: float = 14.0
    net_weight: float = I_TRAINING_NET_WEIGHT  # N, I set only: ΔW ~ U(-net_weight, net_weight) per set-point
    test_flights: Count = 1  # closed-loop: held-out test flights of test_s each; the test loss is their mean

    @field_validator("net_weight")
    @classmethod
    def _net_weight(cls, value: float) -> float:
        if not 0 <= value <= MAX_NET_WEIGHT:
            raise ValueError(f"data.net_weight must be in [0, {MAX_NET_WEIGHT}] N, got {value}")
        return value

    @property
    def gains(self) -> PIDGains:
        return PIDGains(self.kp, self.ki, self.kd)


class EvolutionConfig(Section, title="evolution"):
    generations: int = Field(2000, ge=0)  # 0: only score and keep the start genome (e.g. fitness.init: integrator)
    popsize: int = Field(50, ge=4)
    sigma0: float = Field(0.1, gt=0, le=1)  # in normalised units: range / 10, as the paper
    seed: int = 0
    diagonal: bool = False  # sep-CMA-ES (needed for the N x N variants' 2k-3.6k genes)
    min_std: float = Field(
        0.0, ge=0
    )  # floor of every coordinate's step (pycma ``minstd``) against premature σ collapse
    test_every: Count = 25
    checkpoint_every: Count = 50
    workers: Count = 1  # > 1: Ray actors share each generation's evaluations
    windows_per_generation: Count = 1  # training windows (flights) drawn per generation; the fitness is their mean
    num_threads: Count = 1
    progress_bar: bool = True

    @model_validator(mode="after")
    def _min_std_below_sigma0(self) -> EvolutionConfig:
        if self.min_std >= self.sigma0:
            raise ValueError(f"evolution.min_std must be in [0, sigma0), got {self.min_std}")
        return self


FITNESS_KINDS = ("imitation", "closed-loop")
CLOSED_LOOP_FLIGHTS = ("i-training", "pair-training")  # agents.blimp.closed_loop.FLIGHTS
INTEGRATOR_INIT = "integrator"  # fitness.init keyword: the hand-set integrator of agents.blimp.integrator
PID_PARTNERS = ("pid-i", "pid-pd")  # fitness.partner keywords: the PID's exact I term (data.ki) or PD part (kp, kd)


class FitnessConfig(Section, title="fitness"):
    kind: Literal[FITNESS_KINDS] = "imitation"
    partner: str | None = None  # closed-loop: run whose best network's command is added, or pid-i / pid-pd
    init: str | None = None  # a run directory (its best genome) or "integrator" instead of the activity-preserving init
    steady_state_weight: float = Field(1.0, ge=0)  # closed-loop: loss = tracking MAE + this x steady-state error
    overshoot_weight: float = Field(0.0, ge=0)  # closed-loop: + this x mean overshoot per step (m)
    flip_weight: float = Field(0.0, ge=0)  # closed-loop: + this x servo flips per minute of flight
    flights: Literal[CLOSED_LOOP_FLIGHTS] = "i-training"  # closed-loop: ΔW per set-point, or pair-training: per flight
    coevolve: bool = False  # evolve the partner's network too (from its best genes), as one joint CMA-ES genome

    @model_validator(mode="after")
    def _closed_loop_options(self) -> FitnessConfig:
        if self.partner is not None and self.kind != "closed-loop":
            raise ValueError("fitness.partner only applies to fitness.kind: closed-loop")
        if (self.overshoot_weight or self.flip_weight) and self.kind != "closed-loop":
            raise ValueError("fitness.overshoot_weight and flip_weight only apply to fitness.kind: closed-loop")
        if self.flights != "i-training" and self.kind != "closed-loop":
            raise ValueError("fitness.flights only applies to fitness.kind: closed-loop")
        if self.coevolve and self.partner is None:
            raise ValueError("fitness.coevolve needs fitness.partner (the run whose network evolves alongside)")
        if self.coevolve and self.partner in PID_PARTNERS:
            raise ValueError(
                f"fitness.coevolve needs a network partner; fitness.partner: {self.partner} has nothing to evolve"
            )
        return self


class EvolveConfig(Section):
    network: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    evolution: EvolutionConfig = EvolutionConfig()
    fitness: FitnessConfig = FitnessConfig()

    @model_validator(mode="after")
    def _sections_agree(self) -> EvolveConfig:
        if self.evolution.windows_per_generation > self.data.train_windows:
            raise ValueError(
                f"evolution.windows_per_generation ({self.evolution.windows_per_generation}) exceeds "
                f"data.train_windows ({self.data.train_windows})"
            )
        if self.data.test_flights > 1 and self.fitness.kind != "closed-loop":
            raise ValueError("data.test_flights only applies to fitness.kind: closed-loop (imitation has one test set)")
        return self
