"""Ray RLlib (new API stack) integration: RLModules whose policy is an actor network, and a PPO learner
with a separate actor learning rate."""

from agents.rllib.learners import SpikingPPOLearner
from agents.rllib.modules import SpikingPPOModule, SpikingSACModule

MODULES = {"ppo": SpikingPPOModule, "sac": SpikingSACModule}

__all__ = ["MODULES", "SpikingPPOLearner", "SpikingPPOModule", "SpikingSACModule"]
