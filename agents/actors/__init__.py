"""Actor networks behind one interface (:class:`ActorNetwork`) and a name registry."""

from __future__ import annotations

from agents.actors.base import ActorNetwork
from agents.actors.config import ACTOR_NAMES, ActorConfig
from agents.actors.mlp import MLPActor, mlp
from agents.actors.noisysan import NoisySAN
from agents.actors.spiking import ILCSAN, PopSAN, SpikingActor


def build_actor(obs_dim: int, act_dim: int, config: ActorConfig | dict | None = None) -> ActorNetwork:
    """Build the actor named by ``config.name`` (one of :data:`ACTOR_NAMES`)."""
    if config is None:
        config = ActorConfig()
    elif isinstance(config, dict):
        config = ActorConfig(**config)
    if config.name == "mlp":
        return MLPActor(obs_dim, act_dim, list(config.hidden_sizes))
    actor_class = {"popsan": PopSAN, "ilcsan": ILCSAN, "noisysan": NoisySAN}[config.name]
    return actor_class(obs_dim, act_dim, config)


__all__ = [
    "ACTOR_NAMES",
    "ILCSAN",
    "ActorConfig",
    "ActorNetwork",
    "MLPActor",
    "NoisySAN",
    "PopSAN",
    "SpikingActor",
    "build_actor",
    "mlp",
]
