"""RLlib learner with the two learning rates of the spiking-actor recipes (docs/methods.md, Actions per algorithm)."""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

ACTOR_LR_KEY = "actor_lr"  # key in AlgorithmConfig.learner_config_dict


class SpikingPPOLearner(PPOTorchLearner):
    """PPO learner with two Adam optimizers: the actor network and log σ follow
    ``learner_config_dict["actor_lr"]``; the value function follows ``lr``."""

    def configure_optimizers_for_module(self, module_id, config=None) -> None:  # type: ignore[override]
        module = self.module[module_id]
        actor = module.actor_parameters()
        actor_ids = {id(p) for p in actor}
        others = [p for p in self.get_parameters(module) if id(p) not in actor_ids]
        actor_lr = config.learner_config_dict.get(ACTOR_LR_KEY, config.lr)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="actor",
            optimizer=torch.optim.Adam(actor),
            params=actor,
            lr_or_lr_schedule=actor_lr,
        )
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="value",
            optimizer=torch.optim.Adam(others),
            params=others,
            lr_or_lr_schedule=config.lr,
        )
