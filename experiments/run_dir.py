"""A run directory: resolved config, metadata, evaluations, TensorBoard logs and atomic checkpoints.

Layout::

    RUN_DIR/
      config.yaml            full resolved config
      metadata.json          seed, command line, package versions, git commit, start time
      evaluations.csv        one row per periodic evaluation
      tensorboard/           TensorBoard event files
      checkpoints/step_000010000/{model.zip, replay_buffer.pkl, state.json}
      checkpoints/LATEST     name of the newest complete checkpoint
      model.zip              final model (observation statistics inside)

A checkpoint is written into a temporary directory and renamed into place, and ``LATEST`` is replaced
atomically afterwards, so a crash at any point leaves the previous checkpoint intact.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from experiments.config import ConfigError, RunConfig, config_from_dict

PACKAGES = ("torch", "stable-baselines3", "ray", "gymnasium", "mujoco", "numpy", "numba")
EVALUATION_FIELDS = ("timesteps", "mean_return", "std_return", "mean_length", "sops_per_action", "wall_time_s")


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable."""


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def git_commit() -> str:
    """Commit of the source tree (with ``-dirty`` if modified), or ``unknown`` outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
        return commit + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class Checkpoint:
    path: Path
    timesteps: int

    @property
    def model(self) -> Path:
        return self.path / "model.zip"

    @property
    def replay_buffer(self) -> Path:
        return self.path / "replay_buffer.pkl"

    @property
    def rllib(self) -> Path:
        """RLlib algorithm checkpoint directory (framework ``rllib``)."""
        return self.path / "rllib"


class RunDirectory:
    """Files of one training run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.yaml")
    metadata_file = property(lambda self: self.path / "metadata.json")
    evaluations_file = property(lambda self: self.path / "evaluations.csv")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    final_model = property(lambda self: self.path / "model.zip")
    final_rllib = property(lambda self: self.path / "rllib")  # final RLlib algorithm checkpoint

    def initialise(self, config: RunConfig) -> None:
        """Create the directory and write the resolved config and metadata."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_file, yaml.safe_dump(config.to_dict(), sort_keys=False))
        meta = {
            "seed": config.train.seed,
            "command": " ".join(sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "git_commit": git_commit(),
            "versions": package_versions(),
        }
        write_atomic(self.metadata_file, json.dumps(meta, indent=2) + "\n")

    def load_config(self) -> RunConfig:
        if not self.config_file.is_file():
            raise CheckpointError(f"{self.path} is not a run directory: {self.config_file.name} is missing")
        try:
            return config_from_dict(yaml.safe_load(self.config_file.read_text()))
        except (yaml.YAMLError, ConfigError) as err:
            raise CheckpointError(f"{self.config_file}: unreadable run config: {err}") from err

    # ---- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, model: Any, timesteps: int, keep: int, state: dict[str, Any]) -> Checkpoint:
        """Write an SB3 model (+ replay buffer if any) atomically as ``step_<timesteps>``; prune old ones."""

        def write(staging: Path) -> None:
            model.save(staging / "model.zip")
            if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
                model.save_replay_buffer(staging / "replay_buffer.pkl")

        return self.save_checkpoint_with(write, timesteps, keep, state)

    def save_checkpoint_with(
        self, write: Callable[[Path], None], timesteps: int, keep: int, state: dict[str, Any]
    ) -> Checkpoint:
        """Checkpoint ``step_<timesteps>`` whose files ``write(staging_dir)`` creates, made visible atomically."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        name = f"step_{timesteps:09d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.checkpoints_dir))
        write(staging)
        write_atomic(staging / "state.json", json.dumps({"timesteps": timesteps, **state}, indent=2) + "\n")
        target = self.checkpoints_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        write_atomic(self.checkpoints_dir / "LATEST", name + "\n")
        for old in self.checkpoint_names()[:-keep]:
            shutil.rmtree(self.checkpoints_dir / old, ignore_errors=True)
        return Checkpoint(target, timesteps)

    def checkpoint_names(self) -> list[str]:
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p.name for p in self.checkpoints_dir.iterdir() if p.is_dir() and p.name.startswith("step_"))

    def latest_checkpoint(self) -> Checkpoint:
        """The newest complete checkpoint; raises :class:`CheckpointError` naming what is missing."""
        pointer = self.checkpoints_dir / "LATEST"
        if not pointer.is_file():
            raise CheckpointError(f"no checkpoint to resume from: {pointer} does not exist")
        path = self.checkpoints_dir / pointer.read_text().strip()
        state_file = path / "state.json"
        try:
            state = json.loads(state_file.read_text())
            timesteps = int(state["timesteps"])
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint state {state_file} is missing or corrupt: {err}") from err
        checkpoint = Checkpoint(path, timesteps)
        if not checkpoint.model.is_file() and not checkpoint.rllib.is_dir():
            raise CheckpointError(f"checkpoint model {checkpoint.model} is missing")
        return checkpoint

    def append_evaluation(self, row: dict[str, Any]) -> None:
        """Append one row (keys :data:`EVALUATION_FIELDS`) to ``evaluations.csv``, writing the header first."""
        new_file = not self.evaluations_file.exists()
        with self.evaluations_file.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVALUATION_FIELDS)
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def recorded_wall_time(self) -> float:
        """Wall time of the last evaluation already on disk, so a resumed run keeps counting."""
        if not self.evaluations_file.is_file():
            return 0.0
        rows = list(csv.DictReader(self.evaluations_file.open()))
        return float(rows[-1]["wall_time_s"]) if rows else 0.0
