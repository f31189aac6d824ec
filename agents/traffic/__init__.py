"""Traffic-signal controllers: FixedTime, MaxPressure, Advanced-MP, parameter-shared DQN and MTLight (optionally
spiking)."""

from __future__ import annotations

from agents.traffic.baselines import AdvancedMaxPressureController, FixedTimeController, MaxPressureController
from agents.traffic.config import AGENT_NAMES, LEARNING_AGENTS, TrafficAgentConfig
from agents.traffic.dqn import SharedDQNAgent
from envs.traffic.env import TrafficSignalEnv


def make_controller(config: TrafficAgentConfig, env: TrafficSignalEnv, seed: int = 0):
    """The controller named by ``config.name`` for ``env``."""
    if config.name == "fixedtime":
        return FixedTimeController(env, config.green_time)
    if config.name == "maxpressure":
        return MaxPressureController(env, config.min_green)
    if config.name == "advanced_mp":
        return AdvancedMaxPressureController(env, config.min_green, config.running_weight)
    return SharedDQNAgent(config, env.obs_dim, env.n_phases, env.crossings.n_exits, env.max_lanes, seed)


__all__ = [
    "AGENT_NAMES",
    "AdvancedMaxPressureController",
    "LEARNING_AGENTS",
    "FixedTimeController",
    "MaxPressureController",
    "SharedDQNAgent",
    "TrafficAgentConfig",
    "make_controller",
]
