"""Environments: gymnasium/MuJoCo factory, wrappers, the blimp (``spikerl/BlimpAltitude-v0``) and (later) traffic."""

import envs.blimp  # noqa: F401  (registers spikerl/BlimpAltitude-v0)
from envs.factory import (
    MUJOCO_TASKS,
    IncompatibleEnvironmentError,
    UnknownEnvironmentError,
    check_continuous_actions,
    check_env_id,
    check_training_env,
    make_vec_env,
)
from envs.normalization import ObservationStats
from envs.wrappers import NaNGuard, NonFiniteObservationError

__all__ = [
    "MUJOCO_TASKS",
    "IncompatibleEnvironmentError",
    "NaNGuard",
    "NonFiniteObservationError",
    "ObservationStats",
    "UnknownEnvironmentError",
    "check_continuous_actions",
    "check_env_id",
    "check_training_env",
    "make_vec_env",
]
