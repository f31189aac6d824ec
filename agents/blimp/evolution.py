"""CMA-ES evolution of a blimp SNN controller by open-loop imitation (design reference §3.4), resumable.

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
    RUN_DIR/checkpoint.pkl                CMA-ES state + RNG + best, written atomically
    RUN_DIR/best.npz                      best-on-test genome (normalised) and its test loss
"""

from __future__ import annotations

import csv
import functools
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import yaml

from agents.blimp.config import INTEGRATOR_INIT, EvolveConfig, evolve_config_from_dict
from agents.blimp.controllers import SNNController
from agents.blimp.datasets import ImitationData, generate
from agents.blimp.integrator import integrator_genome
from agents.blimp.snn import SNNArchitecture, SNNPopulation, imitation_loss
from envs.blimp.params import BlimpParameters
from experiments.config import ConfigError
from experiments.run_dir import CheckpointError, git_commit, package_versions, write_atomic

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


class PopulationEvaluator:
    """Imitation losses of a batch of genomes on one training window or on the test sequence."""

    def __init__(self, architecture: SNNArchitecture, data: ImitationData) -> None:
        self.arch = architecture
        self.data = data

    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Losses ``[P]`` and encoding/hidden firing rates ``[P]`` on window ``window`` (``None``: the test set)."""
        if window is None:
            errors, target = self.data.test_errors, self.data.test_targets
        else:
            errors, target = self.data.train_errors[window], self.data.train_targets[window]
        network = SNNPopulation(self.arch, genomes)
        losses = imitation_loss(network.run(errors), torch.as_tensor(target))
        rates = network.firing_rates()
        return losses.numpy(), rates["encoding"].numpy(), rates["hidden"].numpy()


class Evaluator(Protocol):
    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


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


def load_partner(config: EvolveConfig) -> tuple[SNNArchitecture, np.ndarray] | None:
    """``fitness.partner``'s architecture and best genome, or ``None`` (raises naming a missing or corrupt file)."""
    if config.fitness.partner is None:
        return None
    partner = EvolutionRun(config.fitness.partner)
    return partner.load_config().network.architecture(), partner.load_best_genome()


def make_evaluator(
    config: EvolveConfig, data: ImitationData | None, partner: tuple[SNNArchitecture, np.ndarray] | None
) -> Evaluator:
    """The fitness of ``config``: imitation of ``data``, or closed-loop flights summed with ``partner``'s net."""
    arch = config.network.architecture()
    if data is None:
        from agents.blimp.closed_loop import ClosedLoopEvaluator

        d = config.data
        make = functools.partial(
            ClosedLoopEvaluator, arch, partner, d.window_s, d.test_s, d.seed, d.net_weight,
            config.fitness.steady_state_weight,
        )  # fmt: skip
    else:
        make = functools.partial(PopulationEvaluator, arch, data)
    workers = config.evolution.workers
    return RayEvaluator(make, workers) if workers > 1 else make()


def initial_genome(config: EvolveConfig, rng: np.random.Generator) -> np.ndarray:
    """CMA-ES start ``[D]``: the activity-preserving initialisation (``fitness.init`` unset), the hand-set integrator
    with gain ``data.ki`` (``fitness.init: integrator``), or another run's best genome (``fitness.init: RUN_DIR``)."""
    arch = config.network.architecture()
    if config.fitness.init is None:
        return arch.initial_genome(rng)
    if config.fitness.init == INTEGRATOR_INIT:
        try:
            return integrator_genome(arch, config.data.ki * BlimpParameters().control_dt)
        except ValueError as err:
            raise ConfigError(f"fitness.init: integrator with data.ki = {config.data.ki}: {err}") from err
    genome = EvolutionRun(config.fitness.init).load_best_genome()
    if genome.shape != (arch.size,):
        raise ConfigError(
            f"fitness.init: {config.fitness.init} holds a genome of {genome.size} genes, "
            f"the {arch.variant} network with {arch.hidden} hidden neurons has {arch.size}"
        )
    return genome


def write_atomic_bytes(path: Path, payload: bytes) -> None:
    """Binary counterpart of :func:`experiments.run_dir.write_atomic`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


@dataclass
class EvolutionResult:
    generations: int
    best_test_loss: float
    best_generation: int
    wall_time_s: float


class EvolutionRun:
    """Files of one evolution run (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.yaml")
    data_file = property(lambda self: self.path / "data.npz")
    progress_file = property(lambda self: self.path / "progress.csv")
    checkpoint_file = property(lambda self: self.path / "checkpoint.pkl")
    best_file = property(lambda self: self.path / "best.npz")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")

    def initialise(self, config: EvolveConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_file, yaml.safe_dump(config.to_dict(), sort_keys=False))
        meta = {
            "seed": config.evolution.seed,
            "data_seed": config.data.seed,
            "command": " ".join(sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "git_commit": git_commit(),
            "versions": {**package_versions(), "cma": _cma_version()},
        }
        write_atomic(self.path / "metadata.json", json.dumps(meta, indent=2) + "\n")

    def load_config(self) -> EvolveConfig:
        if not self.config_file.is_file():
            raise CheckpointError(f"{self.path} is not an evolution run: {self.config_file.name} is missing")
        try:
            return evolve_config_from_dict(yaml.safe_load(self.config_file.read_text()))
        except (yaml.YAMLError, ConfigError) as err:
            raise CheckpointError(f"{self.config_file}: unreadable evolution config: {err}") from err

    def load_checkpoint(self) -> dict[str, Any]:
        try:
            state = pickle.loads(self.checkpoint_file.read_bytes())
            state["generation"] = int(state["generation"])
            return state
        except FileNotFoundError as err:
            raise CheckpointError(f"no checkpoint to resume from: {self.checkpoint_file} does not exist") from err
        except Exception as err:  # pickle raises many types on corrupt input
            raise CheckpointError(f"checkpoint {self.checkpoint_file} is corrupt: {type(err).__name__}: {err}") from err

    def save_best(self, genome: np.ndarray, test_loss: float, generation: int) -> None:
        tmp = self.path / ".best.tmp.npz"
        np.savez(tmp, genome=genome, test_loss=test_loss, generation=generation)
        os.replace(tmp, self.best_file)

    def load_best_genome(self) -> np.ndarray:
        """The best-on-test normalised genome ``[D]`` (``best.npz``)."""
        try:
            with np.load(self.best_file) as best:
                return best["genome"]
        except (OSError, KeyError, ValueError) as err:
            raise CheckpointError(f"{self.best_file} is missing or corrupt: {err}") from err

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


def _cma_version() -> str:
    try:
        import cma

        return cma.__version__
    except ImportError:
        return "not installed"


def step_size(es) -> float:
    """Mean per-coordinate standard deviation of the search distribution (σ · sqrt(diag C)), normalised units."""
    return float(np.mean(es.result.stds))


def _new_strategy(config: EvolveConfig, x0: np.ndarray):
    try:
        import cma
    except ImportError as err:
        raise ConfigError("evolution needs pycma: pip install 'spikerl[evo]'") from err
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
    return cma.CMAEvolutionStrategy(x0, config.evolution.sigma0, options)


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
    partner = load_partner(config)
    data = None
    if resume:
        state = run.load_checkpoint()
        run.trim_progress(state["generation"])
        if not closed_loop:
            data = ImitationData.load(run.data_file)
    else:
        rng = np.random.default_rng(evo.seed)
        x0 = initial_genome(config, rng)  # checks fitness.init before anything is written
        run.initialise(config)
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
        state = {"generation": 0, "es": _new_strategy(config, x0), "rng": rng.bit_generator.state, "wall": 0.0}
        state.update(best_genome=x0, best_test_loss=np.inf, best_generation=0)
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    es = state["es"]
    evaluator = make_evaluator(config, data, partner)
    writer = SummaryWriter(str(run.tensorboard_dir), purge_step=state["generation"] + 1 if resume else None)
    start_wall = time.perf_counter() - state["wall"]

    def test_and_log(generation: int, candidates: dict[str, np.ndarray], train: dict[str, float]) -> None:
        losses = {name: float(evaluator.evaluate(g[None, :], None)[0][0]) for name, g in candidates.items()}
        for name, loss in losses.items():
            if loss < state["best_test_loss"]:
                state.update(best_test_loss=loss, best_genome=candidates[name].copy(), best_generation=generation)
                run.save_best(state["best_genome"], loss, generation)
        writer.add_scalar("test/loss_generation_best", losses["generation_best"], generation)
        writer.add_scalar("test/loss_cma_mean", losses["cma_mean"], generation)
        writer.add_scalar("test/best_loss", state["best_test_loss"], generation)
        row = {
            "generation": generation,
            **train,
            "test_loss_generation_best": losses["generation_best"],
            "test_loss_cma_mean": losses["cma_mean"],
            "best_test_loss": state["best_test_loss"],
            "sigma": step_size(es),
            "wall_time_s": time.perf_counter() - start_wall,
        }
        run.append_progress(row)

    if not resume:
        mean = np.asarray(es.result.xfavorite)
        train_loss, rate_enc, rate_hid = evaluator.evaluate(mean[None, :], int(rng.integers(windows)))
        train = {"train_loss_best": float(train_loss[0]), "train_loss_mean": float(train_loss[0])}
        train.update(rate_encoding=float(rate_enc[0]), rate_hidden=float(rate_hid[0]))
        test_and_log(0, {"generation_best": mean, "cma_mean": mean}, train)
        state.update(rng=rng.bit_generator.state, wall=time.perf_counter() - start_wall)
        write_atomic_bytes(run.checkpoint_file, pickle.dumps(state))

    bar = tqdm(
        total=total,
        initial=state["generation"],
        unit="gen",
        desc=f"evolve {config.data.target}" + (" closed-loop" if closed_loop else ""),
        disable=not evo.progress_bar,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )
    try:
        for generation in range(state["generation"] + 1, total + 1):
            window = int(rng.integers(windows))
            genomes = np.asarray(es.ask())
            losses, rate_enc, rate_hid = evaluator.evaluate(genomes, window)
            es.tell(list(genomes), losses.tolist())
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
                bar.set_postfix_str(f"test {state['best_test_loss']:.3f} train {losses[best]:.3f}", refresh=False)
            state["generation"] = generation
            if generation % evo.checkpoint_every == 0 or generation == total:
                state.update(rng=rng.bit_generator.state, wall=time.perf_counter() - start_wall)
                write_atomic_bytes(run.checkpoint_file, pickle.dumps(state))
            bar.update(1)
    finally:
        bar.close()
        writer.close()
    return EvolutionResult(state["generation"], float(state["best_test_loss"]), state["best_generation"],
                           time.perf_counter() - start_wall)  # fmt: skip
