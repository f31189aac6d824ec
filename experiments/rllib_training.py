"""Train an RLlib (new API stack) PPO or SAC agent with an actor network from a :class:`RunConfig` into a
run directory: the same ``evaluations.csv``, TensorBoard scalars and atomic, resumable checkpoints as the
SB3 path of :mod:`experiments.training`.

Mapping of the config onto RLlib 2.60:

- ``train.num_env_runners`` -> ``env_runners(num_env_runners=...)`` (0: sample in the driver process;
  ``ray.init(local_mode=True)`` raises in 2.60), one learner in the driver, ``env.n_envs`` environments per
  runner.
- observation normalisation -> a ``MeanStdFilter`` env-to-module connector clipped at ``env.clip_obs``.
- PPO: ``train_batch_size = n_steps * n_envs``, ``minibatch_size = batch_size``, ``num_epochs = n_epochs``,
  ``lr`` for the value function and ``actor_learning_rate`` for the actor and log σ
  (:class:`~agents.rllib.SpikingPPOLearner`), ``grad_clip = max_grad_norm`` (global norm).
- SAC: ``actor_lr`` / ``critic_lr`` from ``actor_learning_rate`` / ``learning_rate``; a numeric ``ent_coef``
  is a fixed temperature (``alpha_lr = 0``), ``"auto"`` learns it; uniform episode replay of
  ``min(buffer_size, timesteps)`` transitions stored in checkpoints; ``train_freq`` steps per sampling round
  and ``gradient_steps`` updates per round (``training_intensity``).

A plain ``algo.train()`` loop writes no TensorBoard files, so every numeric entry of each iteration's result
is written under ``tensorboard/rllib`` here, with the evaluation and spiking-activity scalars.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from envs import check_env_id, make_vec_env
from experiments.config import RunConfig
from experiments.evaluation import evaluation_row, evaluation_scalars, rollout
from experiments.run_dir import (
    CheckpointError,
    RunDirectory,
    require_trusted,
    sign_files,
    wait_past_event_files,
    write_atomic,
)

EVAL_SEED_OFFSET = 10_000
STEPS_KEY = ("env_runners", "num_env_steps_sampled_lifetime")


def _ray_modules():
    """Import Ray lazily (slow, and only needed for this framework) with a clear error if it is missing."""
    try:
        import ray
        from ray.rllib.algorithms.algorithm import Algorithm
        from ray.rllib.algorithms.ppo import PPOConfig
        from ray.rllib.algorithms.sac import SACConfig
        from ray.rllib.connectors.env_to_module.mean_std_filter import MeanStdFilter
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise ImportError("framework rllib needs ray[rllib]: pip install -e '.[rllib]'") from err
    return ray, Algorithm, PPOConfig, SACConfig, MeanStdFilter, RLModuleSpec


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start a fresh local Ray session (or join the cluster at ``address`` or ``$RAY_ADDRESS``) unless one is
    running in this process; quiet and dashboard-free. Another Ray instance on the machine is never joined
    implicitly."""
    ray = _ray_modules()[0]
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        address = "local"
        kwargs.update(num_cpus=num_cpus, object_store_memory=256 * 1024**2)
    ray.init(address=address, **kwargs)


def algorithm_config(config: RunConfig):
    """The RLlib ``AlgorithmConfig`` for ``config`` (``algo.name`` ppo or sac)."""
    from agents.rllib import MODULES, SpikingPPOLearner
    from agents.rllib.learners import ACTOR_LR_KEY

    _, _, PPOConfig, SACConfig, MeanStdFilter, RLModuleSpec = _ray_modules()
    check_env_id(config.env.id)
    hp = config.algo.used()
    name = config.algo.name
    model_config: dict[str, Any] = {
        "actor": dataclasses.asdict(config.actor),
        "hidden_sizes": list(hp["critic_hidden_sizes"]),
    }
    clip = config.env.clip_obs
    connector = (lambda *args, **kwargs: MeanStdFilter(clip_by_value=clip)) if config.env.normalize_obs else None
    if name == "ppo":
        model_config["log_std_init"] = hp["log_std_init"]
        algo = (
            PPOConfig()
            .training(
                lr=hp["learning_rate"],
                gamma=hp["gamma"],
                lambda_=hp["gae_lambda"],
                clip_param=hp["clip_range"],
                entropy_coeff=hp["ent_coef"],
                vf_loss_coeff=hp["vf_coef"],
                grad_clip=hp["max_grad_norm"],
                grad_clip_by="global_norm",
                train_batch_size_per_learner=hp["n_steps"] * config.env.n_envs,
                minibatch_size=hp["batch_size"],
                num_epochs=hp["n_epochs"],
            )
            .learners(learner_class=SpikingPPOLearner, learner_config_dict={ACTOR_LR_KEY: hp["actor_learning_rate"]})
        )
    else:
        fixed_alpha = not isinstance(hp["ent_coef"], str)
        model_config.update(twin_q=True, fcnet_hiddens=list(hp["critic_hidden_sizes"]), fcnet_activation="relu")
        capacity = min(hp["buffer_size"], config.train.timesteps)
        algo = (
            SACConfig()
            .training(
                actor_lr=hp["actor_learning_rate"],
                critic_lr=hp["learning_rate"],
                alpha_lr=0.0 if fixed_alpha else hp["learning_rate"],
                initial_alpha=float(hp["ent_coef"]) if fixed_alpha else 1.0,
                gamma=hp["gamma"],
                tau=hp["tau"],
                train_batch_size_per_learner=hp["batch_size"],
                num_steps_sampled_before_learning_starts=hp["learning_starts"],
                training_intensity=hp["batch_size"] * hp["gradient_steps"] / hp["train_freq"],
                replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": capacity},
                store_buffer_in_checkpoints=True,
            )
            .env_runners(rollout_fragment_length=hp["train_freq"])
            .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=hp["train_freq"])
        )
    return (
        algo.environment(config.env.id)
        .framework("torch")
        .env_runners(
            num_env_runners=config.train.num_env_runners,
            num_envs_per_env_runner=config.env.n_envs,
            env_to_module_connector=connector,
        )
        .learners(num_learners=0)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MODULES[name], model_config=model_config))
        .debugging(seed=config.train.seed, log_level="ERROR")
    )


def load_algorithm(path: Path):
    """Restore an RLlib ``Algorithm`` checkpoint directory, naming it in a :class:`CheckpointError` if unusable.

    RLlib checkpoints hold pickles, so like SB3's ``model.zip`` the directory is restored only if it is trusted
    (:func:`~experiments.run_dir.require_trusted`: every file signed with the user's key when this project wrote
    it, unchanged since, or under ``--trust``)."""
    Algorithm = _ray_modules()[1]
    if not path.is_dir():
        raise CheckpointError(f"RLlib checkpoint {path} is missing")
    require_trusted(path)
    init_ray()
    try:
        return Algorithm.from_checkpoint(str(path.resolve()))
    except Exception as err:  # RLlib raises pickle, msgpack, KeyError, ValueError ... alike
        raise CheckpointError(
            f"RLlib checkpoint {path} is corrupt or incompatible: {type(err).__name__}: {err}"
        ) from err


def _scalars(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested RLlib result dict, keyed ``a/b/c``."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_scalars(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


@dataclass
class RLlibRun:
    """Outcome of :func:`train_rllib`: the algorithm and the environment steps it has sampled."""

    algorithm: Any
    num_timesteps: int


def _sampled(result: dict[str, Any]) -> int:
    return int(result.get(STEPS_KEY[0], {}).get(STEPS_KEY[1], 0))


def _replace_dir(staging: Path, target: Path) -> None:
    """Move directory ``staging`` to ``target``, replacing an existing one (old one removed afterwards)."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def train_rllib(config: RunConfig, run: RunDirectory, resume: bool = False) -> RLlibRun:
    """Train (or resume) the run; the final algorithm checkpoint is written to ``run.final_rllib`` and signed
    (checkpoints are signed by :meth:`~experiments.run_dir.RunDirectory.save_checkpoint_with`)."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from agents.rllib.policy import RLlibPolicy

    torch.set_num_threads(config.train.num_threads)
    init_ray()
    if resume:
        latest = run.latest_checkpoint()
        algo = load_algorithm(latest.rllib)  # first: a refused (untrusted) checkpoint leaves the run as it was
        run.truncate_evaluations(latest.timesteps)  # the resumed run redoes the evaluations after the checkpoint
        steps = latest.timesteps
    else:
        run.initialise(config)
        algo = algorithm_config(config).build_algo()
        steps = 0
    eval_env = make_vec_env(config.env.id, 1, config.train.seed + EVAL_SEED_OFFSET, normalize_obs=False)
    log_dir = run.tensorboard_dir / "rllib"
    if resume:  # the purge_step marker hides the points after the checkpoint if its file sorts after theirs
        wait_past_event_files(log_dir)
    writer = SummaryWriter(str(log_dir), purge_step=steps + 1 if resume else None)
    started = time.time() - run.recorded_wall_time()
    cfg = config.train
    bar = tqdm(total=cfg.timesteps, initial=steps, unit="step", desc="train", disable=not cfg.progress_bar,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)  # fmt: skip

    def checkpoint(at: int, state: dict[str, Any]) -> None:
        run.save_checkpoint_with(
            lambda d: algo.save_to_path(str((d / "rllib").resolve())), at, cfg.keep_checkpoints, state
        )

    try:
        while steps < cfg.timesteps:
            result = algo.train()
            previous, steps = steps, _sampled(result)
            bar.update(steps - previous)
            for key, value in _scalars(result).items():
                writer.add_scalar(key, value, steps)
            if steps // cfg.eval_freq != previous // cfg.eval_freq or steps >= cfg.timesteps:
                stats = rollout(RLlibPolicy.from_algorithm(algo), eval_env, cfg.eval_episodes)
                run.append_evaluation(evaluation_row(steps, stats, time.time() - started))
                for key, value in evaluation_scalars(stats).items():
                    writer.add_scalar(key, value, steps)
                bar.set_postfix_str(f"eval return {stats.mean_return:.1f}", refresh=False)
            if steps // cfg.checkpoint_freq != previous // cfg.checkpoint_freq:
                checkpoint(steps, {})
        checkpoint(steps, {"final": True})
        staging = run.path / ".rllib.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        algo.save_to_path(str(staging.resolve()))
        _replace_dir(staging, run.final_rllib)
        sign_files(run.path, [run.final_rllib.name])  # run/signature.json: every file below rllib/
        write_atomic(run.path / "DONE", f"{steps}\n")
    finally:
        bar.close()
        writer.close()
        eval_env.close()
    return RLlibRun(algo, steps)
