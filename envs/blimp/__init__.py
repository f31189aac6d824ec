"""MuJoCo blimp altitude-control environment, registered with gymnasium as ``spikerl/BlimpAltitude-v0``."""

import gymnasium as gym

from envs.blimp.env import BUOYANCY_MODES, OBSERVATION_MODES, BlimpAltitudeEnv
from envs.blimp.params import BlimpParameters
from envs.blimp.profiles import PROFILES, ReferencePlan, make_plan
from envs.blimp.thruster import Thruster, command_duty

ENV_ID = "spikerl/BlimpAltitude-v0"

if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point="envs.blimp.env:BlimpAltitudeEnv")

__all__ = [
    "BUOYANCY_MODES",
    "ENV_ID",
    "OBSERVATION_MODES",
    "PROFILES",
    "BlimpAltitudeEnv",
    "BlimpParameters",
    "ReferencePlan",
    "Thruster",
    "command_duty",
    "make_plan",
]
