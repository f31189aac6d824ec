"""CMA-ES evolution of a blimp SNN controller by open-loop imitation (docs/blimp.md, Evolution), resumable.

pycma (the reference CMA-ES) runs ask/tell on genomes normalised to [0, 1] with its bound handling and σ0 = 0.1
(= range / 10, as the paper). Each generation draws one training window; the whole population is evaluated in one
batched torch pass (:class:`agents.blimp.snn.SNNPopulation`), or split over Ray actors when ``workers > 1``.
Every ``test_every`` generations the generation's best and the CMA mean are scored on the test sequence and the
best-on-test genome is kept (``best.npz``), which is what deployment uses.

Run directory::

    RUN_DIR/config.yaml, metadata.json    resolved config, seed, versions, git commit
    RUN_DIR/data.npz                      the imitation dataset (flown once, reused on resume)
    RUN_DIR/progress.csv                  one row per test evaluation
    RUN_DIR/tensorboard/                  train/test loss, σ, firing rates
    RUN_DIR/checkpoint.json, .npz         resume state (no pickle: loading it runs no code), written atomically
    RUN_DIR/best.npz                      best-on-test genome (normalised, full) and its test loss
    RUN_DIR/partner/                      with fitness.coevolve: the partner's evolved network (config, best.npz)

``network.genome: structured`` searches the per-pair genome of :mod:`agents.blimp.structured`; the evaluators and
``best.npz`` (``genome``) always see the expanded full genome, ``best.npz`` also keeps the search genes (``genes``).
``fitness.coevolve`` searches the network and its closed-loop partner as one genome (:class:`JointGenome`); the
best pair is kept as ``best.npz`` and ``partner/best.npz``, so ``eval-blimp --pd RUN_DIR --i RUN_DIR/partner`` and
``export RUN_DIR --add RUN_DIR/partner`` read it like two runs.

The checkpoint stores the pycma start (``x0``) and every generation's fitness values; resuming rebuilds the CMA-ES
state by replaying ask/tell with those values (pycma seeds its own sampler, so the replayed samples are the original
ones; no fitness is re-evaluated) and checks the replayed mean against the stored one. A resumed run therefore
continues exactly the search an uninterrupted one would have made.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.blimp.controllers import SNNController
from agents.blimp.datasets import ImitationData, generate
from agents.blimp.fitness import Evaluator, PopulationEvaluator
from agents.blimp.integrator import integrator_genome
from agents.blimp.pid import PIDGains
from agents.blimp.snn import SNNArchitecture
from agents.blimp.structured import JointGenome, SearchSpace, StructuredGenome
from envs.blimp.params import BlimpParameters
from experiments.blimp_config import INTEGRATOR_INIT, PID_PARTNERS, EvolveConfig
from experiments.config import ConfigError
from experiments.run_dir import PACKAGES, BaseRunDirectory, CheckpointError, write_atomic

PROGRESS_FIELDS = (
    "generation",
    "train_loss_best",
    "train_loss_mean",
    "test_loss_generation_best",
    "test_loss_cma_mean",
    "best_test_loss",
    "sigma",
    "rate_encoding",
    "rate_hidden",
    "wall_time_s",
)


class RayEvaluator:
    """Splits each batch over ``workers`` Ray actors, each holding ``make()`` (Ray is optional: ``pip install ray``)."""

    def __init__(self, make: Callable[[], Evaluator], workers: int) -> None:
        try:
            import ray
        except ImportError as err:
            raise ConfigError("evolution.workers > 1 needs Ray (pip install 'spikerl[rllib]')") from err
        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        actor = ray.remote(num_cpus=1)(_SingleThreadEvaluator)
        self.ray = ray
        self.actors = [actor.remote(make) for _ in range(workers)]

    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chunks = np.array_split(genomes, len(self.actors))
        parts = self.ray.get([a.evaluate.remote(c, window) for a, c in zip(self.actors, chunks) if len(c)])
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]


class _SingleThreadEvaluator:
    def __init__(self, make: Callable[[], Evaluator]) -> None:
        torch.set_num_threads(1)
        self.inner = make()

    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.inner.evaluate(genomes, window)


def load_partner(config: EvolveConfig) -> tuple[SNNArchitecture, np.ndarray | None] | PIDGains | None:
    """``fitness.partner``'s architecture and best genome (``None`` in its place when it is co-evolved), the gains
    of the PID part named by ``pid-i`` / ``pid-pd``, or ``None`` without a partner (raises naming a missing or corrupt
    file)."""
    if config.fitness.partner is None:
        return None
    if config.fitness.partner in PID_PARTNERS:  # a part of the PID with the gains of data.kp / ki / kd
        gains = config.data.gains
        return (
            dataclasses.replace(gains, kp=0.0, kd=0.0)
            if config.fitness.partner == "pid-i"
            else (dataclasses.replace(gains, ki=0.0))
        )
    partner = EvolutionRun(config.fitness.partner)
    architecture = partner.load_config().network.architecture()
    return architecture, None if config.fitness.coevolve else partner.load_best_genome()


def search_space(config: EvolveConfig) -> SearchSpace | JointGenome:
    """The genome CMA-ES searches: the network's own (``network.genome``) or, with ``fitness.coevolve``, the joint
    genome of the network and its partner (the partner's genes in the partner run's own search space)."""
    own = config.network.search_space()
    if not config.fitness.coevolve:
        return own
    return JointGenome(own, EvolutionRun(config.fitness.partner).load_config().network.search_space())


def make_evaluator(
    config: EvolveConfig, data: ImitationData | None, partner: tuple[SNNArchitecture, np.ndarray] | PIDGains | None
) -> Evaluator:
    """The fitness of ``config``: imitation of ``data``, or closed-loop flights summed with ``partner``'s net."""
    arch = config.network.architecture()
    if data is None:
        from agents.blimp.closed_loop import ClosedLoopEvaluator

        d = config.data
        make = functools.partial(
            ClosedLoopEvaluator, arch, partner, d.window_s, d.test_s, d.seed, d.net_weight,
            config.fitness.steady_state_weight, config.fitness.overshoot_weight, config.fitness.flip_weight,
            config.fitness.flights, d.test_flights,
        )  # fmt: skip
    else:
        make = functools.partial(PopulationEvaluator, arch, data)
    workers = config.evolution.workers
    return RayEvaluator(make, workers) if workers > 1 else make()


def initial_genome(config: EvolveConfig, rng: np.random.Generator) -> np.ndarray:
    """CMA-ES start in the search space ``[G]``: the activity-preserving initialisation (``fitness.init`` unset),
    the hand-set integrator with gain ``data.ki`` (``fitness.init: integrator``, full genome only), or another run's
    best genome (``fitness.init: RUN_DIR``; its search genes when ``network.genome: structured``); with
    ``fitness.coevolve`` followed by the partner run's best search genes."""
    genes = _own_initial_genome(config, rng)
    if config.fitness.coevolve:
        partner = EvolutionRun(config.fitness.partner)
        partner_genes, size = partner.load_best_genes(), partner.load_config().network.search_space().size
        if partner_genes.shape != (size,):
            raise ConfigError(
                f"fitness.partner: {partner.best_file} holds {partner_genes.size} search genes, its config's "
                f"network.genome has {size}; co-evolve a run written by this version"
            )
        genes = np.concatenate([genes, partner_genes])
    return genes


def _own_initial_genome(config: EvolveConfig, rng: np.random.Generator) -> np.ndarray:
    arch, space = config.network.architecture(), config.network.search_space()
    structured = isinstance(space, StructuredGenome)
    if config.fitness.init is None:
        return space.initial_genome(rng)
    if config.fitness.init == INTEGRATOR_INIT:
        if structured:
            raise ConfigError("fitness.init: integrator needs network.genome: full")
        try:
            return integrator_genome(arch, config.data.ki * BlimpParameters().control_dt)
        except ValueError as err:
            raise ConfigError(f"fitness.init: integrator with data.ki = {config.data.ki}: {err}") from err
    source = EvolutionRun(config.fitness.init)
    genome = source.load_best_genes() if structured else source.load_best_genome()
    if genome.shape != (space.size,):
        what = "structured" if structured else f"{arch.variant} network with {arch.hidden} hidden neurons"
        raise ConfigError(
            f"fitness.init: {config.fitness.init} holds a genome of {genome.size} genes, the {what} has {space.size}"
        )
    return genome


CHECKPOINT_FORMAT = 1


@dataclass
class Checkpoint:
    """Resume state of a run (``checkpoint.json`` + ``checkpoint.npz``).

    Attributes:
        generation: generations completed.
        rng: state of the run's NumPy generator (``bit_generator.state``), which draws the training windows.
        wall: seconds spent so far.
        best_test_loss, best_generation, best_genome: the best-on-test search genome ``[G]`` so far.
        x0: pycma's start ``[G]``.
        losses: fitness values told to pycma, ``[generation, popsize]``.
        mean: pycma's mean ``[G]`` after the last generation (checks the replay).
    """

    generation: int
    rng: dict[str, Any]
    wall: float
    best_test_loss: float
    best_generation: int
    best_genome: np.ndarray
    x0: np.ndarray
    losses: np.ndarray
    mean: np.ndarray


@dataclass
class EvolutionResult:
    generations: int
    best_test_loss: float
    best_generation: int
    wall_time_s: float


class EvolutionRun(BaseRunDirectory):
    """Files of one evolution run (see the module docstring): a run directory with its own checkpoint format."""

    parse_config = staticmethod(EvolveConfig.from_dict)
    config_kind = "evolution"
    packages = (*PACKAGES, "cma")

    data_file = property(lambda self: self.path / "data.npz")
    progress_file = property(lambda self: self.path / "progress.csv")
    checkpoint_file = property(lambda self: self.path / "checkpoint.json")
    checkpoint_arrays = property(lambda self: self.path / "checkpoint.npz")
    legacy_checkpoint = property(lambda self: self.path / "checkpoint.pkl")
    best_file = property(lambda self: self.path / "best.npz")
    partner_run = property(lambda self: EvolutionRun(self.path / "partner"))  # the co-evolved partner's network

    def metadata(self, config: EvolveConfig) -> dict[str, Any]:
        seeds = {"seed": config.evolution.seed, "data_seed": config.data.seed}
        return {**seeds, **super().metadata(config), "cpu_count": os.cpu_count()}

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write the arrays, then the JSON that names the generation (the JSON is the commit point)."""
        tmp = self.path / ".checkpoint.tmp.npz"
        np.savez(tmp, best_genome=checkpoint.best_genome, x0=checkpoint.x0, losses=checkpoint.losses,
                 mean=checkpoint.mean)  # fmt: skip
        os.replace(tmp, self.checkpoint_arrays)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "generation": checkpoint.generation,
            "rng": checkpoint.rng,
            "wall": checkpoint.wall,
            "best_test_loss": checkpoint.best_test_loss if np.isfinite(checkpoint.best_test_loss) else None,
            "best_generation": checkpoint.best_generation,
        }
        write_atomic(self.checkpoint_file, json.dumps(meta) + "\n")

    def load_checkpoint(self) -> Checkpoint:
        """The saved resume state; raises :class:`CheckpointError` naming a missing, corrupt or pickled file.

        Nothing here unpickles: a ``checkpoint.pkl`` (older versions) is refused, and the arrays are read with
        ``allow_pickle=False``."""
        if not self.checkpoint_file.is_file():
            if self.legacy_checkpoint.is_file():
                raise CheckpointError(
                    f"{self.legacy_checkpoint} is a pickle (loading it could run arbitrary code), so it is not loaded; "
                    "start a new run"
                )
            raise CheckpointError(f"no checkpoint to resume from: {self.checkpoint_file} does not exist")
        try:
            meta = json.loads(self.checkpoint_file.read_text())
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
            with np.load(self.checkpoint_arrays, allow_pickle=False) as arrays:
                values = {name: np.asarray(arrays[name]) for name in ("best_genome", "x0", "losses", "mean")}
            generation = int(meta["generation"])
            if len(values["losses"]) != generation:
                raise ValueError(f"{len(values['losses'])} generations of fitness values for generation {generation}")
            best = meta["best_test_loss"]
            return Checkpoint(generation, dict(meta["rng"]), float(meta["wall"]),
                              np.inf if best is None else float(best), int(meta["best_generation"]),
                              **values)  # fmt: skip
        except Exception as err:  # JSON, zip and key errors of a damaged file
            raise CheckpointError(f"checkpoint {self.checkpoint_file} is corrupt: {type(err).__name__}: {err}") from err

    def save_best(self, genome: np.ndarray, test_loss: float, generation: int, genes: np.ndarray) -> None:
        """Keep ``genome`` (full, normalised ``[D]``) and its search ``genes`` ``[G]`` as the best on test."""
        tmp = self.path / ".best.tmp.npz"
        np.savez(tmp, genome=genome, genes=genes, test_loss=test_loss, generation=generation)
        os.replace(tmp, self.best_file)

    def load_best_genome(self, key: str = "genome") -> np.ndarray:
        """The best-on-test normalised full genome ``[D]`` (``best.npz``)."""
        try:
            with np.load(self.best_file, allow_pickle=False) as best:
                return best[key]
        except (OSError, KeyError, ValueError) as err:
            raise CheckpointError(f"{self.best_file} is missing or corrupt: {err}") from err

    def load_best_genes(self) -> np.ndarray:
        """The best-on-test search genes ``[G]`` (the full genome for runs that searched it)."""
        with np.load(self.best_file, allow_pickle=False) as best:
            has_genes = "genes" in best.files
        return self.load_best_genome("genes" if has_genes else "genome")

    def load_controller(self) -> SNNController:
        """The best-on-test network of this run as a closed-loop controller."""
        return SNNController(self.load_config().network.architecture(), self.load_best_genome())

    def trim_progress(self, generation: int) -> None:
        """Drop progress rows written after the checkpoint being resumed."""
        if not self.progress_file.is_file():
            return
        rows = [r for r in csv.DictReader(self.progress_file.open()) if int(r["generation"]) <= generation]
        self._write_rows(rows, mode="w")

    def append_progress(self, row: dict[str, float]) -> None:
        self._write_rows([row], mode="a")

    def _write_rows(self, rows: list[dict], mode: str) -> None:
        new = mode == "w" or not self.progress_file.is_file()
        with self.progress_file.open(mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=PROGRESS_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)


def step_size(es) -> float:
    """Mean per-coordinate standard deviation of the search distribution (σ · sqrt(diag C)), normalised units."""
    return float(np.mean(es.result.stds))


def _new_strategy(config: EvolveConfig, x0: np.ndarray):
    try:
        import cma
    except ImportError as err:
        raise ConfigError("evolution needs pycma: pip install 'spikerl[evo]'") from err
    steps = search_space(config).steps()
    options = {
        "bounds": [0.0, 1.0],
        "popsize": config.evolution.popsize,
        "seed": config.evolution.seed + 1,  # pycma treats 0 as "random"
        "CMA_diagonal": config.evolution.diagonal,
        "minstd": config.evolution.min_std,
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
    }
    if steps is not None:
        options["CMA_stds"] = steps.tolist()
    return cma.CMAEvolutionStrategy(x0, config.evolution.sigma0, options)


def restore_strategy(config: EvolveConfig, checkpoint: Checkpoint):
    """pycma's state after ``checkpoint.generation`` generations, rebuilt by replaying ask/tell with the saved
    fitness values; raises :class:`CheckpointError` if the replayed mean differs from the saved one."""
    es = _new_strategy(config, checkpoint.x0)
    for losses in checkpoint.losses:
        es.tell(es.ask(), losses.tolist())
    if checkpoint.generation and not np.array_equal(np.asarray(es.mean), checkpoint.mean):
        raise CheckpointError(
            "replaying the CMA-ES state from the checkpoint diverged from the saved mean "
            f"(max difference {np.abs(np.asarray(es.mean) - checkpoint.mean).max():.3g}); was it written by another "
            "pycma version?"
        )
    return es


def evolve(
    config: EvolveConfig, run: EvolutionRun, resume: bool = False, generations: int | None = None
) -> EvolutionResult:
    """Evolve (or continue evolving) the controller of ``config`` into ``run`` up to ``generations`` in total."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    evo = config.evolution
    total = generations if generations is not None else evo.generations
    torch.set_num_threads(evo.num_threads)
    windows = config.data.train_windows
    closed_loop = config.fitness.kind == "closed-loop"
    space = search_space(config)
    partner = load_partner(config)
    data = None
    if resume:
        state = run.load_checkpoint()
        es = restore_strategy(config, state)
        run.trim_progress(state.generation)
        if not closed_loop:
            data = ImitationData.load(run.data_file)
    else:
        rng = np.random.default_rng(evo.seed)
        x0 = initial_genome(config, rng)  # checks fitness.init before anything is written
        run.initialise(config)
        if config.fitness.coevolve:  # the partner's evolving network: a run directory eval-blimp and export read
            source = EvolutionRun(config.fitness.partner)
            run.partner_run.initialise(source.load_config(), coevolved_in=str(run.path), started_from=str(source.path))
        if not closed_loop:
            data = generate(
                config.data.target,
                windows,
                config.data.window_s,
                config.data.test_s,
                config.data.seed,
                config.data.gains,
                config.data.net_weight,
                progress=evo.progress_bar,
            )
            data.save(run.data_file)
        es = _new_strategy(config, x0)
        state = Checkpoint(0, rng.bit_generator.state, 0.0, np.inf, 0, x0, x0, np.empty((0, evo.popsize)), x0)
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng
    told = list(state.losses)
    evaluator = make_evaluator(config, data, partner)
    writer = SummaryWriter(str(run.tensorboard_dir), purge_step=state.generation + 1 if resume else None)
    start_wall = time.perf_counter() - state.wall

    def evaluate(genes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return evaluator.evaluate(space.expand(genes), window)

    def checkpoint() -> None:
        state.rng, state.wall = rng.bit_generator.state, time.perf_counter() - start_wall
        state.losses = np.asarray(told, dtype=np.float64) if told else np.empty((0, evo.popsize))
        state.mean = np.asarray(es.mean, dtype=np.float64)
        run.save_checkpoint(state)

    def keep_best(loss: float, generation: int) -> None:
        full = space.expand(state.best_genome)[0]
        if isinstance(space, JointGenome):  # the partner's network first: the own best.npz is written last
            own, partner_genes = space.split(state.best_genome)
            size = config.network.architecture().size
            run.partner_run.save_best(full[size:], loss, generation, partner_genes[0])
            run.save_best(full[:size], loss, generation, own[0])
        else:
            run.save_best(full, loss, generation, state.best_genome)

    def test_and_log(generation: int, candidates: dict[str, np.ndarray], train: dict[str, float]) -> None:
        losses = {name: float(evaluate(g[None, :], None)[0][0]) for name, g in candidates.items()}
        for name, loss in losses.items():
            if loss < state.best_test_loss:
                state.best_test_loss, state.best_generation = loss, generation
                state.best_genome = candidates[name].copy()
                keep_best(loss, generation)
        writer.add_scalar("test/loss_generation_best", losses["generation_best"], generation)
        writer.add_scalar("test/loss_cma_mean", losses["cma_mean"], generation)
        writer.add_scalar("test/best_loss", state.best_test_loss, generation)
        row = {
            "generation": generation,
            **train,
            "test_loss_generation_best": losses["generation_best"],
            "test_loss_cma_mean": losses["cma_mean"],
            "best_test_loss": state.best_test_loss,
            "sigma": step_size(es),
            "wall_time_s": time.perf_counter() - start_wall,
        }
        run.append_progress(row)

    if not resume:
        mean = np.asarray(es.result.xfavorite)
        train_loss, rate_enc, rate_hid = evaluate(mean[None, :], int(rng.integers(windows)))
        train = {"train_loss_best": float(train_loss[0]), "train_loss_mean": float(train_loss[0])}
        train.update(rate_encoding=float(rate_enc[0]), rate_hidden=float(rate_hid[0]))
        test_and_log(0, {"generation_best": mean, "cma_mean": mean}, train)
        checkpoint()

    description = f"evolve {config.data.target}" + (" closed-loop" if closed_loop else "")
    description += " + partner" if config.fitness.coevolve else ""
    bar = tqdm(
        total=total,
        initial=state.generation,
        unit="gen",
        desc=description,
        disable=not evo.progress_bar,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )
    k = evo.windows_per_generation  # one window: the draw of runs that predate the option
    try:
        for generation in range(state.generation + 1, total + 1):
            picks = [int(rng.integers(windows))] if k == 1 else rng.choice(windows, k, replace=False).tolist()
            genomes = np.asarray(es.ask())
            scores = [evaluate(genomes, window) for window in picks]  # the fitness is the mean over the windows
            losses, rate_enc, rate_hid = (np.mean(parts, axis=0) for parts in zip(*scores))
            es.tell(list(genomes), losses.tolist())
            told.append(np.asarray(losses, dtype=np.float64))
            best = int(np.argmin(losses))
            train = {
                "train_loss_best": float(losses[best]),
                "train_loss_mean": float(losses.mean()),
                "rate_encoding": float(rate_enc.mean()),
                "rate_hidden": float(rate_hid.mean()),
            }
            for key, value in train.items():
                writer.add_scalar(f"train/{key}", value, generation)
            writer.add_scalar("cma/sigma", step_size(es), generation)
            if generation % evo.test_every == 0 or generation == total:
                test_and_log(
                    generation, {"generation_best": genomes[best], "cma_mean": np.asarray(es.result.xfavorite)}, train
                )
                bar.set_postfix_str(f"test {state.best_test_loss:.3f} train {losses[best]:.3f}", refresh=False)
            state.generation = generation
            if generation % evo.checkpoint_every == 0 or generation == total:
                checkpoint()
            bar.update(1)
    finally:
        bar.close()
        writer.close()
    return EvolutionResult(state.generation, float(state.best_test_loss), state.best_generation,
                           time.perf_counter() - start_wall)  # fmt: skip
