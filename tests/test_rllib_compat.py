"""The RLlib adapter: version check, keyword-built RLModules that log no deprecation, the frozen obs filter."""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.util.debug import reset_log_once

from agents.rllib.compat import _RL_MODULE_CONFIG_WARNING, UnsupportedRayVersion, check_ray_version
from agents.rllib.modules import SpikingPPOModule, SpikingSACModule

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
MODEL_CONFIG = {"actor": {"name": "ilcsan", "hidden_sizes": [8], "timesteps": 2}, "hidden_sizes": [8]}


def test_untested_ray_version_is_a_clear_error() -> None:
    check_ray_version()  # the installed one is supported
    check_ray_version("2.60.3")
    with pytest.raises(UnsupportedRayVersion, match=r"ray 2\.61\.0 is untested.*supported: 2\.60"):
        check_ray_version("2.61.0")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("module_class", [SpikingPPOModule, SpikingSACModule])
def test_modules_build_from_keywords_without_deprecation_records(module_class) -> None:
    logger = logging.getLogger("ray._common.deprecation")
    records = _Records()
    logger.addHandler(records)
    try:
        reset_log_once(_RL_MODULE_CONFIG_WARNING)  # RLlib logs it once per process: make it due again
        config = {**MODEL_CONFIG, "twin_q": True} if module_class is SpikingSACModule else MODEL_CONFIG
        direct = module_class(observation_space=OBS, action_space=ACT, inference_only=False, model_config=config)
        spec = RLModuleSpec(module_class=module_class, observation_space=OBS, action_space=ACT, model_config=config)
        built = spec.build()
    finally:
        logger.removeHandler(records)
    assert not [m for m in records.messages if "DeprecationWarning" in m], records.messages
    for module in (direct, built):
        assert module.model_config["actor"]["name"] == "ilcsan" and not module.inference_only
        out = module.forward_inference({Columns.OBS: torch.zeros(4, 3)})[Columns.ACTION_DIST_INPUTS]
        assert out.shape == (4, 2 * ACT.shape[0])
