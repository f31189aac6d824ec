"""Helpers shared by the SB3 policy classes."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
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


class ActorConfigMixin:
    """Policy mixin: takes ``actor_config`` (validated; actor ``default_actor`` unless it names another) and
    saves it with the policy. Critic/value networks default to ``net_arch = [256, 256]``."""

    default_actor = "mlp"
    actor_config: dict[str, Any]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        actor_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # set before the SB3 base __init__, which builds the networks
        self.actor_config = resolve_actor_config(actor_config, self.default_actor)
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch or [256, 256], **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(actor_config=self.actor_config)
        return data


def actor_optimizer(policy: BasePolicy, actor_params, other_params, lr_schedule: Schedule) -> torch.optim.Optimizer:
    """Optimizer whose first group (``actor_params``) is tagged ``lr_role="actor"``; the algorithm
    classes of :mod:`agents.sb3.algorithms` drive that group with ``actor_learning_rate``."""
    groups: list[dict[str, Any]] = [{"params": list(actor_params), "lr_role": ACTOR_ROLE}]
    other = list(other_params)
    if other:
        groups.append({"params": other})
    return policy.optimizer_class(groups, lr=lr_schedule(1), **policy.optimizer_kwargs)
