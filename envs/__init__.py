"""Environments: the gymnasium/MuJoCo factory, wrappers, and (later) the blimp and traffic environments."""

from envs.factory import (
    MUJOCO_TASKS,
    IncompatibleEnvironmentError,
    UnknownEnvironmentError,
    check_continuous_actions,
    check_env_id,
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
    "make_vec_env",
]
