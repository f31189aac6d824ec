"""Traffic run configuration: four YAML sections, validated like :mod:`experiments.config`::

    scenario: {name: grid2x2, data_dir: null, road_length: 300, demand_we: 300, demand_ns: 300, ...}
              # or your own files: {name: mytown, roadnet: roadnet.json, flow: flow.json}
    env:      {backend: sumo, phases: 4, decision_interval: 10, yellow_time: 3, horizon: 3600, reward: queue}
    agent:    {name: mtlight, ...}            # agents.traffic.config.TrafficAgentConfig
    train:    {episodes: 30, seed: 0, ...}

Unknown keys are rejected by name; unknown scenario/backend/agent names list the valid ones.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from agents.traffic.config import TrafficAgentConfig
from envs.traffic.datasets import DATASETS, GRID_PATTERN, UnknownScenarioError, load_scenario, scenario_names
from envs.traffic.env import TrafficEnvSettings
from envs.traffic.grid import GridSpec
from envs.traffic.scenario import Scenario
from experiments.config import Count, Section


class ScenarioConfig(Section, title="scenario"):
    """Scenario: a name (``gridCxR`` or a dataset) or a user's CityFlow ``roadnet`` + ``flow`` JSON files (then
    ``name`` is only a label), the benchmark data directory and sha256 check, and the synthetic-grid demand."""

    name: str = "grid2x2"
    roadnet: str | None = None  # CityFlow roadnet JSON of a user scenario (with flow)
    flow: str | None = None  # CityFlow flow JSON of a user scenario (with roadnet)
    data_dir: str | None = None  # default: $SPIKERL_TRAFFIC_DATA, else ~/.cache/spikerl/traffic
    verify_sha256: bool = True  # check dataset files against their registered sha256
    road_length: float = 300.0
    demand_we: float = 300.0  # vehicles / hour per east- or west-bound entry
    demand_ns: float = 300.0  # vehicles / hour per north- or south-bound entry
    turn_ratios: list[float] = [0.1, 0.8, 0.1]  # left, straight, right
    peak_factor: float = 1.0
    peak_start: float = 0.0
    peak_end: float = 0.0
    flow_seed: int = 0

    @model_validator(mode="after")
    def _known_scenario(self) -> ScenarioConfig:
        if (self.roadnet is None) != (self.flow is None):
            raise ValueError("scenario.roadnet and scenario.flow go together: give both files or neither")
        if self.roadnet is None and not GRID_PATTERN.match(self.name) and self.name not in DATASETS:
            raise UnknownScenarioError(
                f"scenario.name: unknown scenario {self.name!r}; valid: {', '.join(scenario_names())}"
            )
        return self

    def build(self, horizon: float) -> Scenario:
        if self.roadnet is not None:
            return Scenario.from_files(self.name, Path(self.roadnet).expanduser(), Path(self.flow).expanduser())
        grid = GridSpec(
            road_length=self.road_length,
            demand_we=self.demand_we,
            demand_ns=self.demand_ns,
            turn_ratios=tuple(self.turn_ratios),
            horizon=horizon,
            peak_factor=self.peak_factor,
            peak_start=self.peak_start,
            peak_end=self.peak_end,
            seed=self.flow_seed,
        )
        return load_scenario(self.name, self.data_dir, grid, verify=self.verify_sha256)


class TrafficTrainConfig(Section, title="train"):
    episodes: Count = 30  # training episodes (baselines: evaluation episodes)
    seed: int = 0
    eval_episodes: Count = 1  # greedy episodes after training
    keep_checkpoints: Count = 2
    num_threads: Count = 1
    progress_bar: bool = True


class TrafficRunConfig(Section):
    scenario: ScenarioConfig = ScenarioConfig()
    env: TrafficEnvSettings = TrafficEnvSettings()
    agent: TrafficAgentConfig = TrafficAgentConfig()
    train: TrafficTrainConfig = TrafficTrainConfig()
