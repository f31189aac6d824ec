"""Stable-Baselines3 integration: policies per algorithm module and algorithm classes.

Usage the SB3 way::

    from agents.sb3 import TD3
    from agents.sb3.td3 import ILCSANPolicy
    model = TD3(ILCSANPolicy, env, learning_rate=1e-3, actor_learning_rate=1e-4)

    from agents.sb3 import NoisyTD3
    from agents.sb3.td3 import NoisySANPolicy
    model = NoisyTD3(NoisySANPolicy, env, noise_beta=1.0, noise_reduction_ceiling=4000.0)
"""

from agents.sb3.algorithms import ALGORITHMS, DDPG, POLICIES, PPO, SAC, TD3, SpikingAlgorithmMixin
from agents.sb3.noisy_td3 import NoiseKeyReplayBuffer, NoisyTD3

__all__ = [
    "ALGORITHMS",
    "DDPG",
    "PPO",
    "POLICIES",
    "SAC",
    "TD3",
    "NoiseKeyReplayBuffer",
    "NoisyTD3",
    "SpikingAlgorithmMixin",
]
