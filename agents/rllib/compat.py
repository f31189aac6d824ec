"""Every RLlib internal this project relies on, behind one adapter with a Ray version check.

RLlib offers no public accessor for two things the evaluation policy needs: the env-to-module connector
pipeline of an EnvRunner (``EnvRunner._env_to_module``) and the running statistics inside its
``MeanStdFilter`` connector (``MeanStdFilter._filters``). They are read here and nowhere else, for the Ray
versions in :data:`TESTED_RAY_VERSIONS`; on any other version :func:`check_ray_version` raises with the
supported versions, instead of failing somewhere inside a run.

RLlib's ``RLModule`` base class also builds a legacy ``RLModuleConfig`` in its own constructor, which logs a
"DeprecationWarning" even for modules built with keyword arguments (``observation_space``, ``action_space``,
``inference_only``, ``model_config``), as :class:`agents.rllib.modules` are. :func:`quiet_rl_module_config`
drops that one log record; everything else RLlib logs passes.
"""

from __future__ import annotations

import logging
from typing import Any

TESTED_RAY_VERSIONS = ("2.60",)  # major.minor releases whose internals this module was checked against
_RL_MODULE_CONFIG_WARNING = "RLModule(config=[RLModuleConfig object])"


class UnsupportedRayVersion(RuntimeError):
    """The installed Ray is not one this adapter was tested with."""


def check_ray_version(version: str | None = None) -> None:
    """Raise :class:`UnsupportedRayVersion` unless ``version`` (default: the installed Ray) is tested."""
    if version is None:
        import ray

        version = ray.__version__
    if ".".join(version.split(".")[:2]) not in TESTED_RAY_VERSIONS:
        raise UnsupportedRayVersion(
            f"ray {version} is untested with spikerl's RLlib integration (it reads RLlib internals); "
            f"supported: {', '.join(TESTED_RAY_VERSIONS)} (pip install -e '.[rllib]')"
        )


class _DropRLModuleConfigWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _RL_MODULE_CONFIG_WARNING not in record.getMessage()


_QUIET = _DropRLModuleConfigWarning()


def quiet_rl_module_config() -> None:
    """Drop RLlib's own ``RLModuleConfig`` deprecation record (see the module docstring); idempotent."""
    logger = logging.getLogger("ray._common.deprecation")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


def local_env_runner(algorithm: Any) -> Any:
    """The EnvRunner of ``algorithm`` that lives in this process."""
    return algorithm.env_runner or algorithm.env_runner_group.local_env_runner


def frozen_observation_filter(algorithm: Any) -> Any | None:
    """A copy of the single-agent running mean/std filter of the algorithm's ``MeanStdFilter`` connector, or
    None without one. Call it as ``obs_filter(obs [n, obs_dim], update=False)``."""
    from ray.rllib.connectors.env_to_module.mean_std_filter import MeanStdFilter

    pipeline = local_env_runner(algorithm)._env_to_module
    connectors = [c for c in pipeline.connectors if isinstance(c, MeanStdFilter)]
    if not connectors:
        return None
    connectors[0].get_state()  # creates the filters on first use
    (obs_filter,) = connectors[0]._filters.values()
    return obs_filter.copy()
