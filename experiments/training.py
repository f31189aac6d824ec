"""Train an SB3 agent from a :class:`RunConfig` into a run directory, with periodic evaluation, atomic
checkpoints, TensorBoard logging, a progress bar, and resume.

A checkpoint of an off-policy run at step N holds exactly N transitions: it is written when the rollout
that crossed the checkpoint step ends (SB3 stores a step's transition after the step's callbacks run), so with
``checkpoint_freq`` a multiple of ``algo.train_freq`` it lands exactly on the multiples of ``checkpoint_freq``.
A resume from step N drops the evaluations and TensorBoard points after N (the run redoes them)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm import tqdm

from agents.sb3 import ALGORITHMS, POLICIES, NoisyTD3
from envs import check_continuous_actions, make_vec_env
from experiments.config import RunConfig
from experiments.evaluation import evaluation_row, evaluation_scalars, rollout
from experiments.policy_package import write_package
from experiments.run_dir import (
    CheckpointError,
    RunDirectory,
    fault_point,
    replace_atomic,
    require_trusted,
    sign_files,
    wait_past_event_files,
    write_atomic,
)

EVAL_SEED_OFFSET = 10_000


def algorithm_class(config: RunConfig) -> type[BaseAlgorithm]:
    """The SB3 algorithm class of a run: :class:`NoisyTD3` for the noisysan actor, else ``config.algo.name``'s."""
    return NoisyTD3 if config.actor.name == "noisysan" else ALGORITHMS[config.algo.name]


def noise_kwargs(config: RunConfig) -> dict[str, Any]:
    """:class:`NoisyTD3` arguments from ``config.noise`` (empty unless the actor is noisysan)."""
    if config.actor.name != "noisysan":
        return {}
    noise = config.noise
    return {
        "noise_beta": noise.beta,
        "noise_horizon": noise.horizon,
        "noise_table_size": noise.table_size,
        "noise_reduction_ceiling": noise.ceiling(config.env.id),
        "noise_reduction_floor": noise.reduction_floor,
        "noise_reduction_max": noise.reduction_max,
    }


def build_model(
    config: RunConfig, env: VecEnv, tensorboard_log: str | None = None, buffer_size: int | None = None
) -> BaseAlgorithm:
    """Instantiate the algorithm of ``config.algo`` with the actor of ``config.actor`` on ``env``
    (``buffer_size``: replay capacity instead of the config's, e.g. 1 for a model only loaded to act)."""
    hp = {**config.algo.used(), **noise_kwargs(config)}
    policy_kwargs: dict[str, Any] = {
        "actor_config": dataclasses.asdict(config.actor),
        "net_arch": list(hp.pop("critic_hidden_sizes")),
    }
    if "log_std_init" in hp:
        policy_kwargs["log_std_init"] = hp.pop("log_std_init")
    if "action_noise" in hp:
        sigma = hp.pop("action_noise")
        dim = env.action_space.shape[0]
        hp["action_noise"] = NormalActionNoise(np.zeros(dim), sigma * np.ones(dim)) if sigma > 0 else None
    if "buffer_size" in hp:  # a run never stores more transitions than it takes steps
        hp["buffer_size"] = buffer_size or min(hp["buffer_size"], config.train.timesteps)
    return algorithm_class(config)(
        POLICIES[config.algo.name],  # builds the actor named in actor_config
        env,
        policy_kwargs=policy_kwargs,
        seed=config.train.seed,
        device=config.train.device,
        tensorboard_log=tensorboard_log,
        verbose=0,
        **hp,
    )


def load_model(path: Path, config: RunConfig, env: VecEnv | None = None, **kwargs: Any) -> BaseAlgorithm:
    """Load SB3's pickled ``model.zip`` if it is trusted (:func:`~experiments.run_dir.require_trusted`: signed
    with the user's key or under ``--trust``), raising :class:`CheckpointError` naming the file if it is missing
    or corrupt."""
    if not path.is_file():
        raise CheckpointError(f"model file {path} is missing")
    require_trusted(path)
    try:
        return algorithm_class(config).load(path, env=env, device=config.train.device, **kwargs)
    except Exception as err:  # SB3 raises zipfile, pickle, torch and KeyError failures alike
        raise CheckpointError(f"model file {path} is corrupt or incompatible: {type(err).__name__}: {err}") from err


def grow_replay_buffer(model: BaseAlgorithm, capacity: int) -> None:
    """Enlarge ``model.replay_buffer`` to ``capacity`` transitions, keeping every stored one.

    Runs allocate ``min(buffer_size, timesteps)``; resuming with more timesteps needs the larger buffer.
    """
    old = model.replay_buffer
    if old is None or old.buffer_size >= capacity:
        return
    new = type(old)(
        capacity,
        old.observation_space,
        old.action_space,
        device=old.device,
        n_envs=old.n_envs,
        handle_timeout_termination=old.handle_timeout_termination,
    )
    stored = old.buffer_size if old.full else old.pos
    for name, array in vars(old).items():  # every per-transition array, including subclasses' extra ones
        if isinstance(array, np.ndarray) and array.shape[:1] == (old.buffer_size,):
            getattr(new, name)[:stored] = array[:stored]
    new.pos = stored
    model.replay_buffer = new
    model.buffer_size = capacity


class TrainingProgress(BaseCallback):
    """tqdm bar over environment steps with the recent episode return and steps/s."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        interactive = sys.stderr.isatty()
        self.bar = tqdm(
            total=self.total,
            initial=self.num_timesteps,
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5 if interactive else 30.0,
            desc="train",
        )

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.training_env.num_envs)
        episodes = self.model.ep_info_buffer
        if episodes and self.n_calls % 100 == 0:
            self.bar.set_postfix_str(f"return {np.mean([e['r'] for e in episodes]):.1f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PeriodicEvaluation(BaseCallback):
    """Every ``eval_freq`` steps: evaluate deterministically, append to ``evaluations.csv``, log to
    TensorBoard, then write a checkpoint every ``checkpoint_freq`` steps."""

    def __init__(self, run: RunDirectory, eval_env: VecEnv, config: RunConfig) -> None:
        super().__init__()
        self.run = run
        self.eval_env = eval_env
        self.train_cfg = config.train
        self.started = time.time() - run.recorded_wall_time()
        self.checkpointed = 0  # checkpoint periods completed

    def _on_training_start(self) -> None:
        self.checkpointed = self.model.num_timesteps // self.train_cfg.checkpoint_freq
        # off-policy: checkpoint once the rollout's transitions are stored (see the module docstring)
        self.after_rollout = getattr(self.model, "replay_buffer", None) is not None

    def _due(self, frequency: int) -> bool:
        n_envs = self.training_env.num_envs
        return self.num_timesteps // frequency != (self.num_timesteps - n_envs) // frequency

    def _checkpoint_if_due(self) -> None:
        periods = self.model.num_timesteps // self.train_cfg.checkpoint_freq
        if periods > self.checkpointed:
            self.checkpointed = periods
            self.run.save_checkpoint(self.model, self.model.num_timesteps, self.train_cfg.keep_checkpoints, {})

    def _on_step(self) -> bool:
        if self._due(self.train_cfg.eval_freq):
            self.evaluate()
        if not self.after_rollout:
            self._checkpoint_if_due()
        return True

    def _on_rollout_end(self) -> None:
        if self.after_rollout:
            self._checkpoint_if_due()

    def evaluate(self) -> None:
        """Deterministic episodes on the raw evaluation env (``predict`` normalises with the training statistics)."""
        stats = rollout(self.model, self.eval_env, self.train_cfg.eval_episodes)
        self.model.report_evaluation(stats.mean_return)
        self.run.append_evaluation(evaluation_row(self.num_timesteps, stats, time.time() - self.started))
        for key, value in evaluation_scalars(stats).items():
            self.logger.record(key, value)
        self.logger.dump(self.num_timesteps)


def purge_tensorboard(run: RunDirectory, timesteps: int) -> None:
    """Hide the TensorBoard points after step ``timesteps`` in the run's latest SB3 log (which a resume continues):
    a session-start marker with ``purge_step`` makes TensorBoard drop the later points written before it."""
    logs = [p for p in run.tensorboard_dir.glob("sb3_*") if p.name.rpartition("_")[2].isdigit()]
    if not logs:
        return
    from torch.utils.tensorboard import SummaryWriter

    latest = max(logs, key=lambda p: int(p.name.rpartition("_")[2]))
    wait_past_event_files(latest)  # the marker and the resumed points sort after every older file
    SummaryWriter(log_dir=str(latest), purge_step=timesteps + 1).close()


def resume_model(config: RunConfig, run: RunDirectory, train_env: VecEnv) -> BaseAlgorithm:
    """The model of the run's latest intact checkpoint with its replay buffer, evaluations and TensorBoard logs
    cut back to the checkpoint's step."""
    checkpoint = run.latest_checkpoint()
    run.truncate_evaluations(checkpoint.timesteps)
    purge_tensorboard(run, checkpoint.timesteps)
    model = load_model(checkpoint.model, config, train_env, tensorboard_log=str(run.tensorboard_dir))
    if isinstance(train_env, VecNormalize):
        model.restore_normalization(train_env)
    if hasattr(model, "replay_buffer"):
        if not checkpoint.replay_buffer.is_file():
            raise CheckpointError(f"replay buffer {checkpoint.replay_buffer} is missing")
        require_trusted(checkpoint.replay_buffer)
        try:
            model.load_replay_buffer(checkpoint.replay_buffer)
        except Exception as err:
            raise CheckpointError(f"replay buffer {checkpoint.replay_buffer} is corrupt: {err}") from err
        grow_replay_buffer(model, min(config.algo.buffer_size, config.train.timesteps))
    return model


def train(config: RunConfig, run: RunDirectory, resume: bool = False) -> BaseAlgorithm:
    """Train (or resume) the run and return the model, holding the run's lock throughout; the final model is
    written to ``run.final_model`` (SB3 format, signed) and ``run.final_policy`` (pickle-free package)."""
    with run.locked():
        return _train(config, run, resume)


def _train(config: RunConfig, run: RunDirectory, resume: bool) -> BaseAlgorithm:
    torch.set_num_threads(config.train.num_threads)
    env_cfg, seed = config.env, config.train.seed
    train_env = make_vec_env(env_cfg.id, env_cfg.n_envs, seed, env_cfg.normalize_obs, env_cfg.clip_obs)
    check_continuous_actions(env_cfg.id, train_env.action_space, config.algo.name)
    eval_env = make_vec_env(env_cfg.id, 1, seed + EVAL_SEED_OFFSET, normalize_obs=False)
    if resume:
        model = resume_model(config, run, train_env)
    else:
        run.initialise(config)
        model = build_model(config, train_env, tensorboard_log=str(run.tensorboard_dir))
    remaining = config.train.timesteps - model.num_timesteps
    callbacks: list[BaseCallback] = [PeriodicEvaluation(run, eval_env, config)]
    if config.train.progress_bar:
        callbacks.append(TrainingProgress(config.train.timesteps))
    if remaining > 0:
        model.learn(remaining, callback=callbacks, reset_num_timesteps=not resume, tb_log_name="sb3")
    run.save_checkpoint(model, model.num_timesteps, config.train.keep_checkpoints, {"final": True})
    replace_atomic(run.final_model, model.save)
    sign_files(run.path, [run.final_model.name])
    write_package(model, config, run.final_policy, source=f"trained, {model.num_timesteps} steps")
    fault_point("before_done")
    write_atomic(run.done_file, f"{model.num_timesteps}\n")
    train_env.close()
    eval_env.close()
    return model
