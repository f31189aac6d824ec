"""Ray RLlib (new API stack) integration: RLModules whose policy is an actor network, and a PPO learner
with a separate actor learning rate."""

from agents.rllib.compat import check_ray_version, quiet_rl_module_config

check_ray_version()
quiet_rl_module_config()

from agents.rllib.learners import SpikingPPOLearner  # noqa: E402  (after the version check)
from agents.rllib.modules import SpikingPPOModule, SpikingSACModule  # noqa: E402

MODULES = {"ppo": SpikingPPOModule, "sac": SpikingSACModule}

__all__ = ["MODULES", "SpikingPPOLearner", "SpikingPPOModule", "SpikingSACModule"]
