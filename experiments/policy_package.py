"""Policy packages: a trained SB3 policy in files that load without unpickling (safe to share and commit).

Layout::

    PACKAGE/
      config.yaml         the run's resolved config (YAML, read with yaml.safe_load)
      policy.pt           the SB3 policy's state_dict: tensors only, read with torch.load(weights_only=True)
      normalization.npz   observation mean/var/count/clip/epsilon (absent without normalisation), allow_pickle=False
      card.json           format, algorithm, steps, environment, provenance, SHA-256 of the files above

A finished run writes one as ``RUN/policy``; ``train_agent.py package RUN --out DIR`` writes one for any
run (including runs that only have SB3's pickled ``model.zip``, which then must be trusted). ``eval`` and
``export`` accept a package directory in place of a run directory.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from envs import ObservationStats, make_vec_env
from envs.errors import one_line
from experiments.config import ConfigError, RunConfig
from experiments.run_dir import (
    ASIDE_PREFIX,
    DIR_MODE,
    CheckpointError,
    file_digest,
    git_commit,
    make_directory,
    replace_atomic,
    write_atomic,
)

PACKAGE_FORMAT = "spikerl-policy/1"
CARD_FILE = "card.json"
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "policy.pt"
NORMALIZATION_FILE = "normalization.npz"


def is_package(path: Path) -> bool:
    """Whether ``path`` is a policy package directory (it has ``card.json``)."""
    return (Path(path) / CARD_FILE).is_file()


def write_package(
    model: Any,
    config: RunConfig,
    out: Path,
    source: str,
    commit: str | None = None,
    evaluation: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` (an SB3 algorithm of this project) and ``config`` as a package ``out`` (new, empty, or a
    package, which is replaced). Written in a staging directory and renamed into place, as checkpoints are.

    ``source`` says where the weights came from, ``commit`` which code trained them (default: this checkout's),
    ``evaluation`` (``episodes``, ``seed``, ``mean_return``, ``std_return``) what ``train_agent.py eval`` with that
    seed and number of episodes reproduces; both go into ``card.json``."""
    out = Path(out)
    if out.exists() and not is_package(out) and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not a policy package; give a new or empty directory")
    make_directory(out.parent, "package directory")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(staging, DIR_MODE)
    try:
        _write_files(model, config, staging, source, commit, evaluation)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    aside = out.parent / f"{ASIDE_PREFIX}{out.name}"
    if out.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(out, aside)
    os.replace(staging, out)
    shutil.rmtree(aside, ignore_errors=True)


def _write_files(
    model: Any, config: RunConfig, out: Path, source: str, commit: str | None, evaluation: dict[str, Any] | None
) -> None:
    write_atomic(out / CONFIG_FILE, yaml.safe_dump(config.to_dict(), sort_keys=False))
    state = {key: value.detach().cpu().clone() for key, value in model.policy.state_dict().items()}
    replace_atomic(out / WEIGHTS_FILE, lambda path: torch.save(state, path))
    files = [CONFIG_FILE, WEIGHTS_FILE]
    venv = model.get_vec_normalize_env()
    stats = ObservationStats.from_vec_normalize(venv) if venv is not None else model.obs_normalization
    if stats is not None:
        arrays = {"mean": stats.mean, "var": stats.var, "count": stats.count, "clip": stats.clip, "eps": stats.epsilon}

        def save(file: Path) -> None:
            with file.open("wb") as handle:
                np.savez(handle, **arrays)

        replace_atomic(out / NORMALIZATION_FILE, save)
        files.append(NORMALIZATION_FILE)
    card = {
        "format": PACKAGE_FORMAT,
        "algorithm": config.algo.name,
        "actor": config.actor.name,
        "env": config.env.id,
        "timesteps": int(model.num_timesteps),
        "seed": config.train.seed,
        "source": source,
        "git_commit": commit or git_commit(),
        **({"evaluation": evaluation} if evaluation else {}),
        "files": {name: file_digest(out / name) for name in files},
    }
    write_atomic(out / CARD_FILE, json.dumps(card, indent=2) + "\n")


def read_card(path: Path) -> dict[str, Any]:
    """``card.json`` of a package, checked: known format and every listed file present with its digest."""
    card_file = Path(path) / CARD_FILE
    try:
        card = json.loads(card_file.read_text())
        files = dict(card["files"])
        fmt = card["format"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{card_file} is missing or corrupt: {err}") from err
    if fmt != PACKAGE_FORMAT:
        raise CheckpointError(f"{card_file}: unknown package format {fmt!r}; this version reads {PACKAGE_FORMAT}")
    for name, digest in files.items():
        file = Path(path) / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing (listed in {card_file})")
        if file_digest(file) != digest:
            raise CheckpointError(f"{file} is corrupt or was modified: its SHA-256 differs from {card_file}")
    return card


def load_package(path: Path) -> BaseAlgorithm:
    """The SB3 algorithm of a package, rebuilt from its config with the saved weights; nothing is unpickled.

    Its ``predict`` takes raw observations (normalised with the package's statistics)."""
    from experiments.training import build_model

    path = Path(path)
    card = read_card(path)
    try:
        config = RunConfig.from_dict(yaml.safe_load((path / CONFIG_FILE).read_text()))
    except (yaml.YAMLError, ConfigError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: unreadable config: {err}") from err
    env = make_vec_env(config.env.id, 1, config.train.seed, normalize_obs=False)
    model = build_model(config, env, buffer_size=1)
    try:
        state = torch.load(path / WEIGHTS_FILE, map_location=config.train.device, weights_only=True)
        model.policy.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, OSError, pickle.UnpicklingError) as err:  # unpickler refusal, shapes
        problem = f"{type(err).__name__}: {one_line(err)}"
        raise CheckpointError(f"{path / WEIGHTS_FILE} does not fit the config: {problem}") from err
    if NORMALIZATION_FILE in card["files"]:
        with np.load(path / NORMALIZATION_FILE, allow_pickle=False) as saved:
            model.obs_normalization = ObservationStats(
                saved["mean"], saved["var"], float(saved["count"]), float(saved["clip"]), float(saved["eps"])
            )
    model.num_timesteps = int(card["timesteps"])
    return model
