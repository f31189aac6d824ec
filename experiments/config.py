"""Run configuration: dataclasses loaded from YAML, validated, and overridable from the command line.

A config file has these sections, each optional::

    env:   {id: Hopper-v5, n_envs: 1, normalize_obs: true, clip_obs: 3.0}
    actor: {name: ilcsan, timesteps: 5, ...}          # agents.actors.ActorConfig
    algo:  {name: td3, actor_learning_rate: 1.0e-4, ...}
    train: {timesteps: 100000, seed: 0, ...}
    noise: {beta: 1.0, ...}                           # actor noisysan only (NoiseConfig)

Unknown keys are rejected by name; values are type-checked. Algorithm hyperparameters left unset take the
papers' recipe for that algorithm (:data:`ALGO_DEFAULTS`); setting one that the algorithm does not use is
an error.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agents.actors import ActorConfig
from envs.errors import UserError

ALGO_NAMES = ("td3", "ddpg", "sac", "ppo")
FRAMEWORKS = ("sb3", "rllib")
RLLIB_ALGO_NAMES = ("ppo", "sac")  # RLlib 2.60 has no TD3/DDPG

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A configuration file or override is malformed."""


@dataclass
class EnvConfig:
    id: str = "InvertedPendulum-v5"
    n_envs: int = 1
    normalize_obs: bool = True
    clip_obs: float = 3.0

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ConfigError(f"env.n_envs must be >= 1, got {self.n_envs}")
        if not self.clip_obs > 0:
            raise ConfigError(f"env.clip_obs must be > 0, got {self.clip_obs}")


_OFF_POLICY = {
    "learning_rate": 1e-3,  # critics (and SAC's log-std head)
    "actor_learning_rate": 1e-4,
    "batch_size": 100,
    "buffer_size": 1_000_000,
    "learning_starts": 10_000,
    "train_freq": 50,
    "gradient_steps": 50,
    "gamma": 0.99,
    "tau": 0.005,
    "critic_hidden_sizes": [256, 256],
}
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "td3": {
        **_OFF_POLICY,
        "action_noise": 0.1,
        "policy_delay": 2,
        "target_policy_noise": 0.2,
        "target_noise_clip": 0.5,
    },
    "ddpg": {**_OFF_POLICY, "action_noise": 0.1},
    "sac": {**_OFF_POLICY, "ent_coef": 0.2},
    "ppo": {
        "learning_rate": 1e-4,  # value function
        "actor_learning_rate": 1e-5,  # actor network and log-std
        "batch_size": 100,
        "n_steps": 1000,
        "n_epochs": 25,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "ent_coef": 0.001,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "log_std_init": -0.5,
        "critic_hidden_sizes": [256, 256],
    },
}
# (lowest, highest, lowest included) of each numeric hyperparameter; None: unbounded on that side
ALGO_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "learning_rate": (0, None, False),
    "actor_learning_rate": (0, None, False),
    "batch_size": (1, None, True),
    "buffer_size": (1, None, True),
    "learning_starts": (0, None, True),
    "train_freq": (1, None, True),
    "gradient_steps": (1, None, True),
    "gamma": (0, 1, False),
    "tau": (0, 1, False),
    "action_noise": (0, None, True),
    "policy_delay": (1, None, True),
    "target_policy_noise": (0, None, True),
    "target_noise_clip": (0, None, True),
    "ent_coef": (0, None, True),
    "n_steps": (1, None, True),
    "n_epochs": (1, None, True),
    "gae_lambda": (0, 1, True),
    "clip_range": (0, None, False),
    "vf_coef": (0, None, True),
    "max_grad_norm": (0, None, False),
}


def check_range(where: str, value: float, low: float | None, high: float | None, low_included: bool) -> None:
    """Raise :class:`ConfigError` unless ``value`` is in ``[low, high]`` (``(low, high]`` if not ``low_included``)."""
    below = low is not None and (value < low if low_included else value <= low)
    if below or (high is not None and value > high):
        left = "[" if low_included else "("
        raise ConfigError(f"{where} must be in {left}{low}, {'inf' if high is None else high}], got {value}")


@dataclass
class AlgoConfig:
    """Algorithm hyperparameters; ``None`` means "the recipe default for ``name``" (see :data:`ALGO_DEFAULTS`)."""

    name: str = "td3"
    learning_rate: float | None = None
    actor_learning_rate: float | None = None
    batch_size: int | None = None
    buffer_size: int | None = None
    learning_starts: int | None = None
    train_freq: int | None = None
    gradient_steps: int | None = None
    gamma: float | None = None
    tau: float | None = None
    action_noise: float | None = None
    policy_delay: int | None = None
    target_policy_noise: float | None = None
    target_noise_clip: float | None = None
    ent_coef: float | str | None = None
    n_steps: int | None = None
    n_epochs: int | None = None
    gae_lambda: float | None = None
    clip_range: float | None = None
    vf_coef: float | None = None
    max_grad_norm: float | None = None
    log_std_init: float | None = None
    critic_hidden_sizes: list[int] | None = None

    def __post_init__(self) -> None:
        if self.name not in ALGO_NAMES:
            raise ConfigError(f"algo.name: unknown algorithm {self.name!r}; valid: {', '.join(ALGO_NAMES)}")
        defaults = ALGO_DEFAULTS[self.name]
        for key in self.hyperparameter_names():
            value = getattr(self, key)
            if value is None:
                setattr(self, key, defaults.get(key))
            elif key not in defaults:
                raise ConfigError(f"algo.{key} does not apply to {self.name} (it uses: {', '.join(defaults)})")
        for key, value in self.used().items():
            if key == "ent_coef" and isinstance(value, str):
                if value != "auto" and not value.startswith("auto_"):
                    raise ConfigError(f"algo.ent_coef must be a number >= 0, 'auto' or 'auto_<init>', got {value!r}")
            elif key == "critic_hidden_sizes":
                if not value or min(value) < 1:
                    raise ConfigError(f"algo.critic_hidden_sizes must be a non-empty list of sizes >= 1, got {value}")
            elif key in ALGO_RANGES:
                check_range(f"algo.{key}", value, *ALGO_RANGES[key])

    @staticmethod
    def hyperparameter_names() -> list[str]:
        return [f.name for f in dataclasses.fields(AlgoConfig) if f.name != "name"]

    def used(self) -> dict[str, Any]:
        """The hyperparameters this algorithm uses, resolved."""
        return {key: getattr(self, key) for key in ALGO_DEFAULTS[self.name]}


@dataclass
class TrainConfig:
    timesteps: int = 100_000
    seed: int = 0
    eval_freq: int = 10_000  # environment steps between evaluations (and checkpoints)
    eval_episodes: int = 10
    checkpoint_freq: int = 10_000
    keep_checkpoints: int = 2
    num_threads: int = 1
    device: str = "cpu"
    progress_bar: bool = True
    framework: str = "sb3"  # sb3 | rllib
    num_env_runners: int = 0  # RLlib only: 0 samples in the driver process

    def __post_init__(self) -> None:
        for key in ("timesteps", "eval_freq", "eval_episodes", "checkpoint_freq", "keep_checkpoints", "num_threads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"train.seed must be in [0, 2**32 - 1], got {self.seed}")
        if self.framework not in FRAMEWORKS:
            raise ConfigError(f"train.framework: unknown framework {self.framework!r}; valid: {', '.join(FRAMEWORKS)}")
        if self.num_env_runners < 0:
            raise ConfigError(f"train.num_env_runners must be >= 0, got {self.num_env_runners}")


# docs/methods.md, NoisySAN: evaluation return at which NoisySAN's noise-reduction coefficient reaches its maximum
PAPER_NOISE_CEILINGS = {
    "Ant": 6000.0,
    "HalfCheetah": 12000.0,
    "Hopper": 4000.0,
    "Walker2d": 6000.0,
    "Humanoid": 6000.0,
    "HumanoidStandup": 180000.0,
    "InvertedDoublePendulum": 10000.0,
    "BipedalWalker": 320.0,
    "InvertedPendulum": 1000.0,  # not in the paper: the task's maximum return
}


def task_name(env_id: str) -> str:
    """``"Hopper-v5"`` -> ``"Hopper"``; ``"spikerl/BlimpAltitude-v0"`` -> ``"BlimpAltitude"``."""
    return env_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1].rsplit("-v", 1)[0]


@dataclass
class NoiseConfig:
    """NoisySAN exploration noise and noise reduction (docs/methods.md, NoisySAN); used with actor ``noisysan``."""

    beta: float = 1.0  # 1/f^beta: 0 white, 1 pink, 2 brown
    horizon: int = 1000  # environment steps per episode, for the noise's low-frequency cutoff
    table_size: int = 2**24  # samples in the shared noise table (power of two; 4 bytes each)
    reduction_max: float = 1.0  # k_max
    reduction_floor: float = 0.0  # R_floor: below this evaluation return k = 0
    reduction_ceilings: dict[str, float] = field(default_factory=lambda: dict(PAPER_NOISE_CEILINGS))

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ConfigError(f"noise.beta must be >= 0, got {self.beta}")
        if self.horizon < 1:
            raise ConfigError(f"noise.horizon must be >= 1, got {self.horizon}")
        if self.table_size < 1 or self.table_size & (self.table_size - 1):
            raise ConfigError(f"noise.table_size must be a power of two, got {self.table_size}")

    def ceiling(self, env_id: str) -> float:
        """``R_ceiling`` of ``env_id``'s task."""
        task = task_name(env_id)
        if task not in self.reduction_ceilings:
            raise ConfigError(
                f"no noise-reduction ceiling for task {task!r}: add noise.reduction_ceilings.{task} "
                f"(known: {', '.join(sorted(self.reduction_ceilings))})"
            )
        ceiling = self.reduction_ceilings[task]
        if ceiling <= self.reduction_floor:
            raise ConfigError(f"noise.reduction_ceilings.{task} ({ceiling}) must exceed noise.reduction_floor")
        return ceiling


@dataclass
class RunConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        if self.train.framework == "rllib" and self.algo.name not in RLLIB_ALGO_NAMES:
            raise ConfigError(
                f"algo.name: {self.algo.name} is not available with framework rllib (RLlib 2.60 has no TD3/DDPG); "
                f"use {' or '.join(RLLIB_ALGO_NAMES)}, or framework sb3"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["algo"] = {"name": self.algo.name, **self.algo.used()}
        if self.actor.name != "noisysan":
            del data["noise"]
        return data


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field annotation (coercing YAML's ``1e-4`` strings to float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(annotation)
        return {_coerce(k, key_type, where): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {annotation}")


def build_dataclass(cls: type, values: dict[str, Any], name: str) -> Any:
    """Instantiate config dataclass ``cls`` from a YAML mapping (section ``name``): unknown keys rejected by name,
    values type-checked, ``ValueError`` from validation re-raised as :class:`ConfigError`."""
    if not isinstance(values, dict):
        raise ConfigError(f"section {name!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"unknown key(s) in {name}: {', '.join(unknown)}; valid: {', '.join(hints)}")
    kwargs = {key: _coerce(value, hints[key], f"{name}.{key}") for key, value in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from err


@functools.cache
def config_sections(config_class: type) -> dict[str, type]:
    """Section name -> section dataclass of a run-config dataclass (its fields, in order)."""
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def build_config(config_class: type[T], data: Any) -> T:
    """``config_class`` built from a mapping of sections, each section as its dataclass; unknown sections, keys
    and wrongly typed values are rejected by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    sections = config_sections(config_class)
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}; valid: {', '.join(sections)}")
    return config_class(**{name: build_dataclass(cls, data.get(name) or {}, name) for name, cls in sections.items()})


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested mappings."""
    if isinstance(data, dict):
        actor = data.get("actor") or {}
        if isinstance(actor, dict) and actor.get("name", ActorConfig.name) == "noisysan":
            data = {**data, "algo": _noisysan_algo(data.get("algo") or {})}
        elif data.get("noise"):
            raise ConfigError("section noise applies only to actor noisysan")
    config = build_config(RunConfig, data)
    if config.actor.name == "noisysan":
        config.noise.ceiling(config.env.id)
    return config


def _noisysan_algo(algo: Any) -> Any:
    """NoisySAN trains with TD3 and explores through network noise only: the algo section without action noise."""
    if not isinstance(algo, dict):
        return algo  # build_dataclass reports the malformed section
    name = algo.get("name", AlgoConfig.name)
    if name != "td3":
        raise ConfigError(f"actor noisysan trains with algo td3 only (network-noise exploration), got {name!r}")
    if algo.get("action_noise") not in (None, 0, 0.0):
        raise ConfigError(
            f"actor noisysan explores through network noise only: algo.action_noise must be 0, "
            f"got {algo['action_noise']!r}"
        )
    return {**algo, "action_noise": 0.0}


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return data


def parse_override(text: str, config_class: type | None = None) -> tuple[str, str, Any]:
    """``"section.key=value"`` -> ``(section, key, value)`` with ``value`` parsed as YAML; the section must be one
    of ``config_class`` (default :class:`RunConfig`)."""
    sections = config_sections(config_class or RunConfig)
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. actor.timesteps=8)")
    path, raw = text.split("=", 1)
    section, key = path.split(".", 1)
    if section not in sections:
        raise ConfigError(f"override {text!r}: unknown section {section!r}; valid: {', '.join(sections)}")
    try:
        return section, key, yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({problem})") from err


def read_config_data(path: str | Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Raw config mapping from an optional YAML file, then ``overrides`` (``{section: {key: value}}``) on top."""
    data = read_yaml(path) if path is not None else {}
    for section, values in (overrides or {}).items():
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping, got {current!r}")
        data[section] = {**current, **values}
    return data


def cli_overrides(
    texts: list[str], flags: dict[tuple[str, str], Any], config_class: type | None = None
) -> dict[str, dict[str, Any]]:
    """``--set section.key=value`` texts plus command-line flags (``{(section, key): value}``; None = not given)
    as ``{section: {key: value}}``, flags last; sections checked against ``config_class`` (default RunConfig)."""
    overrides: dict[str, dict[str, Any]] = {}
    for section, key, value in (parse_override(text, config_class) for text in texts):
        overrides.setdefault(section, {})[key] = value
    for (section, key), value in flags.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Config from an optional YAML file, then ``overrides`` (``{section: {key: value}}``) on top."""
    return config_from_dict(read_config_data(path, overrides))
