"""Experiment suites: a grid (env × actor × algo × seed × framework) of training runs from one YAML file.

A suite file::

    name: smoke
    out: runs/suites/smoke          # one run directory per trial: <env>_<actor>_<algo>_s<seed>[_rllib]
    results: docs/results/smoke     # aggregated table (Markdown + CSV) and learning curves
    baseline: mlp                   # actor the performance ratios (APR) are measured against
    max_concurrent: 2               # trials running at once (Ray Tune)
    cpus_per_trial: 1
    rerun_episodes: 1               # single episodes of the final model, for the papers' "max" statistic
    readme: false                   # replace the results block of docs/results.md with the table
    grid: {env: [...], actor: [...], algo: [td3], seed: [0, 1], framework: [sb3]}
    config: experiments/td3_ilcsan.yaml   # optional base run config (sections env, actor, algo, train)
    overrides: {train: {timesteps: 100000}}            # applied to every trial
    actor_overrides: {mlp: {algo: {actor_learning_rate: 1.0e-3}}}   # per actor name, applied last

Relative paths are relative to the current directory. The selected trials' configs are all resolved and
validated before anything runs, so a malformed suite fails at once, naming the trial and the key.
"""

from __future__ import annotations

import copy
import itertools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.config import ConfigError, RunConfig, read_yaml

GRID_KEYS = ("env", "actor", "algo", "seed", "framework")
GRID_TARGETS = {
    "env": ("env", "id"),
    "actor": ("actor", "name"),
    "algo": ("algo", "name"),
    "seed": ("train", "seed"),
    "framework": ("train", "framework"),
}


@dataclass(frozen=True)
class Trial:
    """One grid point and its fully resolved run config."""

    env: str
    actor: str
    algo: str
    seed: int
    framework: str
    config: dict[str, Any]  # RunConfig.to_dict()
    run_dir: str
    command: str = ""  # the command that runs this trial alone (recorded in the run's metadata.json)

    @property
    def name(self) -> str:
        return Path(self.run_dir).name

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(copy.deepcopy(self.config))


@dataclass
class Suite:
    name: str
    out: Path
    results: Path
    grid: dict[str, list[Any]]
    baseline: str = "mlp"
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    rerun_episodes: int = 1
    readme: bool = False
    config: str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    actor_overrides: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def trials(self, only: dict[str, list[str]] | None = None) -> list[Trial]:
        """Every grid point (restricted to ``only``: grid key -> allowed values as strings), resolved."""
        base = read_yaml(self.config) if self.config else {}
        values = [self.grid.get(key, [None]) for key in GRID_KEYS]
        trials = []
        for point in itertools.product(*values):
            chosen = dict(zip(GRID_KEYS, point))
            if only and any(str(chosen[key]) not in allowed for key, allowed in only.items()):
                continue
            data = _merge(base, self.overrides)
            for key, value in chosen.items():
                if value is not None:
                    section, name = GRID_TARGETS[key]
                    data.setdefault(section, {})[name] = value
            data = _merge(data, self.actor_overrides.get(str(chosen["actor"]), {}))
            try:
                config = RunConfig.from_dict(data)
            except ConfigError as err:
                raise ConfigError(f"suite {self.name}, trial {chosen}: {err}") from err
            suffix = "_rllib" if config.train.framework == "rllib" else ""
            name = f"{config.env.id}_{config.actor.name}_{config.algo.name}_s{config.train.seed}{suffix}"
            trials.append(
                Trial(
                    config.env.id, config.actor.name, config.algo.name, config.train.seed, config.train.framework,
                    config.to_dict(), str((self.out / name).resolve()),
                )
            )  # fmt: skip
        if not trials:
            raise ConfigError(f"suite {self.name}: the grid (after --only) selects no trials")
        return trials


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Section-wise merge: ``extra[section][key]`` replaces ``base[section][key]``."""
    merged = copy.deepcopy(base)
    for section, values in extra.items():
        if not isinstance(values, dict):
            raise ConfigError(f"override section {section!r} must be a mapping, got {values!r}")
        merged.setdefault(section, {}).update(copy.deepcopy(values))
    return merged


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file (unknown keys and grid axes are rejected by name)."""
    data = read_yaml(path)
    hints = typing.get_type_hints(Suite)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ConfigError(f"{path}: unknown suite key(s): {', '.join(unknown)}; valid: {', '.join(hints)}")
    for key in ("name", "out", "results", "grid"):
        if key not in data:
            raise ConfigError(f"{path}: suite key {key!r} is required")
    grid = data["grid"]
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: grid must be a mapping of {', '.join(GRID_KEYS)} to lists")
    bad = sorted(set(grid) - set(GRID_KEYS))
    if bad:
        raise ConfigError(f"{path}: unknown grid axis/axes: {', '.join(bad)}; valid: {', '.join(GRID_KEYS)}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list, got {values!r}")
    for key in ("env", "actor", "algo", "seed"):
        if key not in grid:
            raise ConfigError(f"{path}: grid.{key} is required")
    suite = Suite(**{**data, "out": Path(data["out"]), "results": Path(data["results"])})
    if suite.max_concurrent < 1 or suite.cpus_per_trial <= 0 or suite.rerun_episodes < 0:
        raise ConfigError(f"{path}: max_concurrent >= 1, cpus_per_trial > 0 and rerun_episodes >= 0 are required")
    return suite
