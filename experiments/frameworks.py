"""Dispatch on ``train.framework`` (sb3 or rllib): the training function and the trained policy of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from experiments.config import RunConfig
from experiments.run_dir import CheckpointError, RunDirectory

CHECKPOINT_CHOICES = ("final", "latest")


def train_function(config: RunConfig) -> Callable[..., Any]:
    """``train(config, run, resume=False)`` of the config's framework; its result has ``num_timesteps``."""
    if config.train.framework == "rllib":
        from experiments.rllib_training import train_rllib

        return train_rllib
    from experiments.training import train

    return train


def load_policy(run: RunDirectory, which: str = "final") -> Any:
    """The run's policy with ``predict(raw_obs, deterministic=True)``, ``actor_network`` and ``actor_config``:
    an SB3 algorithm (``framework: sb3``) or an :class:`~agents.rllib.policy.RLlibPolicy` (``rllib``).

    ``run`` may also be a policy package (:mod:`experiments.policy_package`). ``which`` is ``final`` (the model
    written when training finished: its pickle-free package if present, else SB3's ``model.zip``, which must be
    trusted) or ``latest`` (newest intact checkpoint's ``model.zip``).
    """
    from experiments.policy_package import is_package, load_package

    if which not in CHECKPOINT_CHOICES:
        raise ValueError(f"unknown checkpoint {which!r}; valid: {', '.join(CHECKPOINT_CHOICES)}")
    if is_package(run.path):
        return load_package(run.path)
    config = run.load_config()
    rllib = config.train.framework == "rllib"
    if which == "final":
        if not rllib and is_package(run.final_policy):
            return load_package(run.final_policy)
        path = run.final_rllib if rllib else run.final_model
        if not path.exists():
            raise CheckpointError(f"{path} is missing (training not finished?); use --checkpoint latest")
    else:
        checkpoint = run.latest_checkpoint()
        path = checkpoint.rllib if rllib else checkpoint.model
    if rllib:  # RLlib checkpoints hold pickles too: signed or --trust (docs/security.md)
        from agents.rllib.policy import RLlibPolicy
        from experiments.rllib_training import load_algorithm

        return RLlibPolicy.from_algorithm(load_algorithm(path))
    from experiments.training import load_model

    return load_model(path, config)
