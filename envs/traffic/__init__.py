"""Traffic-signal control: CityFlow-format scenarios, SUMO/CityFlow backends and a PettingZoo Parallel environment."""

from envs.traffic.datasets import (
    DATASETS,
    DatasetChecksumError,
    DatasetMissingError,
    UnknownScenarioError,
    load_scenario,
    scenario_names,
)
from envs.traffic.env import BACKENDS, NoVehiclesError, TrafficEnvSettings, TrafficSignalEnv
from envs.traffic.grid import GridSpec, grid_scenario
from envs.traffic.scenario import Scenario, ScenarioError

__all__ = [
    "BACKENDS",
    "DATASETS",
    "DatasetChecksumError",
    "DatasetMissingError",
    "GridSpec",
    "NoVehiclesError",
    "Scenario",
    "ScenarioError",
    "TrafficEnvSettings",
    "TrafficSignalEnv",
    "UnknownScenarioError",
    "grid_scenario",
    "load_scenario",
    "scenario_names",
]
