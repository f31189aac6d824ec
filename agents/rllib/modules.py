"""RLlib (new API stack) ``RLModule`` classes whose policy is an :class:`~agents.actors.ActorNetwork`.

The actor is built by :func:`agents.actors.build_actor` from ``model_config["actor"]`` (an
:class:`~agents.actors.ActorConfig` as a dict), exactly as the SB3 policies build it, so any actor name of
:data:`~agents.actors.ACTOR_NAMES` plugs in (the run config keeps NoisySAN, a TD3-only recipe, on SB3).
The action heads mirror the SB3 policies of :mod:`agents.sb3`:

- PPO: Gaussian mean ``tanh(network(obs))``, state-independent log σ (``log_std_init``), MLP value function.
- SAC: squashed-Gaussian mean ``network(obs)`` (RLlib's ``TorchSquashedGaussian`` applies the tanh and its
  log-prob correction), ``log σ = clamp(MLP(obs), -20, 2)``; RLlib's twin Q critics.

``model_config`` keys: ``actor`` (dict, required), ``hidden_sizes`` (value / log-σ / critic MLP sizes,
default ``[256, 256]``), ``log_std_init`` (PPO, default -0.5). Observations ``[B, obs_dim]`` are the
normalised ones of the env-to-module pipeline (a ``MeanStdFilter`` clipped at ±3 in
:mod:`experiments.rllib_training`).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from agents.actors import ActorConfig, ActorNetwork, build_actor, mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the bounds SB3's SAC uses
DEFAULT_HIDDEN = [256, 256]


def _dims(module: Any) -> tuple[int, int]:
    obs_shape, act_shape = module.observation_space.shape, module.action_space.shape
    if obs_shape is None or len(obs_shape) != 1 or act_shape is None or len(act_shape) != 1:
        raise ValueError(
            f"spiking RLModules need flat Box observations and actions, got {module.observation_space} "
            f"and {module.action_space}"
        )
    return obs_shape[0], act_shape[0]


def _build_network(module: Any) -> ActorNetwork:
    config = module.model_config or {}
    if "actor" not in config:
        raise ValueError("model_config needs an 'actor' entry (an ActorConfig as a dict)")
    obs_dim, act_dim = _dims(module)
    return build_actor(obs_dim, act_dim, ActorConfig(**config["actor"]))


class ActorNetworkModule:
    """Mixin: the :class:`ActorNetwork` in ``self.network`` fed with float32 observations."""

    network: ActorNetwork

    def actor_pre_activation(self, obs: torch.Tensor) -> torch.Tensor:
        """Actor-network output ``[B, act_dim]`` for observations ``[B, obs_dim]``."""
        return self.network(obs.float())


class SpikingPPOModule(ActorNetworkModule, TorchRLModule, ValueFunctionAPI):
    """PPO module: ``N(tanh(network(obs)), exp(log_std))`` policy and an MLP value function."""

    def setup(self) -> None:
        obs_dim, act_dim = _dims(self)
        hidden = list(self.model_config.get("hidden_sizes", DEFAULT_HIDDEN))
        self.network = _build_network(self)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(self.model_config.get("log_std_init", -0.5))))
        self.value = mlp([obs_dim, *hidden, 1])

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mean = torch.tanh(self.actor_pre_activation(batch[Columns.OBS]))
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """State values ``[B]``."""
        return self.value(batch[Columns.OBS].float()).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters that follow the actor learning rate: the actor network and log σ."""
        return [*self.network.parameters(), self.log_std]


class _Observations(nn.Module):
    """SAC ``pi_encoder`` stand-in: passes the observations through as the encoding."""

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {ENCODER_OUT: batch[Columns.OBS]}


class _SquashedGaussianHead(nn.Module):
    """SAC ``pi`` head: ``[mean, log σ]`` with ``mean = network(obs)`` and ``log σ`` from an MLP."""

    def __init__(self, network: ActorNetwork, log_std: nn.Sequential) -> None:
        super().__init__()
        self.network = network
        self.log_std = log_std

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        log_std = torch.clamp(self.log_std(obs), LOG_STD_MIN, LOG_STD_MAX)
        return torch.cat([self.network(obs), log_std], dim=-1)


class SpikingSACModule(ActorNetworkModule, DefaultSACTorchRLModule):
    """RLlib's default SAC module with the policy replaced by an actor network and a log-σ MLP.

    The critics are RLlib's (``fcnet_hiddens`` of the model config); RLlib's SAC learner trains
    ``pi_encoder`` + ``pi`` (here: the actor network and the log-σ MLP) with ``actor_lr``.
    """

    def setup(self) -> None:
        super().setup()
        obs_dim, act_dim = _dims(self)
        hidden = list(self.model_config.get("hidden_sizes", DEFAULT_HIDDEN))
        self.pi_encoder = _Observations()
        self.pi = _SquashedGaussianHead(_build_network(self), mlp([obs_dim, *hidden, act_dim]))

    @property
    def network(self) -> ActorNetwork:  # type: ignore[override]
        return self.pi.network
