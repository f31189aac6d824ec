"""Helpers shared by the SB3 policy classes."""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule

from agents.actors import ActorConfig

ACTOR_ROLE = "actor"


def resolve_actor_config(actor_config: dict[str, Any] | None, default_name: str) -> dict[str, Any]:
    """Validated actor config as a plain dict (SB3 stores policy kwargs as JSON-like data)."""
    config = {"name": default_name, **(actor_config or {})}
    unknown = set(config) - set(ActorConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown actor_config keys: {', '.join(sorted(unknown))}")
    ActorConfig(**config)
    return config


def actor_optimizer(policy: BasePolicy, actor_params, other_params, lr_schedule: Schedule) -> torch.optim.Optimizer:
    """Optimizer whose first group (``actor_params``) is tagged ``lr_role="actor"``; the algorithm
    classes of :mod:`agents.sb3.algorithms` drive that group with ``actor_learning_rate``."""
    groups: list[dict[str, Any]] = [{"params": list(actor_params), "lr_role": ACTOR_ROLE}]
    other = list(other_params)
    if other:
        groups.append({"params": other})
    return policy.optimizer_class(groups, lr=lr_schedule(1), **policy.optimizer_kwargs)
