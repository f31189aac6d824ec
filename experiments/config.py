"""Run configuration: pydantic models loaded from YAML, validated, and overridable from the command line.

A config file has these sections, each optional::

    env:   {id: Hopper-v5, n_envs: 1, normalize_obs: true, clip_obs: 3.0}
    actor: {name: ilcsan, timesteps: 5, ...}          # agents.actors.ActorConfig
    algo:  {name: td3, actor_learning_rate: 1.0e-4, ...}
    train: {timesteps: 100000, seed: 0, ...}
    noise: {beta: 1.0, ...}                           # actor noisysan only (NoiseConfig)

Every section is a pydantic model (or a dataclass of ``agents``/``envs``) that rejects unknown keys, checks types
and ranges, and checks assignments too (``config.train.timesteps = 0`` fails). ``algo`` is a union discriminated
on ``algo.name``: each algorithm's model holds the hyperparameters it uses with the papers' recipe as defaults,
and setting one that the algorithm does not use is an error. Pydantic's errors become one :class:`ConfigError`
line that names the key path (:func:`describe`).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agents.actors import ActorConfig
from envs.errors import UserError

FRAMEWORKS = ("sb3", "rllib")
RLLIB_ALGO_NAMES = ("ppo", "sac")  # RLlib 2.60 has no TD3/DDPG

T = TypeVar("T", bound=BaseModel)
Count = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Sizes = Annotated[list[Count], Field(min_length=1)]


class ConfigError(UserError, ValueError):
    """A configuration file or override is malformed."""


class Section(BaseModel):
    """A config model: unknown keys rejected, values checked on construction and on assignment. A section's
    ``title`` (class keyword) is its name, which prefixes the key path of a failed assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as err:
            raise ConfigError(describe(err, type(self), self.model_config.get("title", ""))) from None

    def to_dict(self) -> dict[str, Any]:
        """The resolved values as plain YAML-safe data (what a run directory's ``config.yaml`` holds)."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The config validated from nested mappings (one-line :class:`ConfigError` on the first problem)."""
        return build_config(cls, data)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Self:
        """Config from an optional YAML file, then ``overrides`` (``{section: {key: value}}``) on top."""
        return cls.from_dict(read_config_data(path, overrides))


class EnvConfig(Section, title="env"):
    id: str = "InvertedPendulum-v5"
    n_envs: Count = 1
    normalize_obs: bool = True
    clip_obs: float = Field(3.0, gt=0)


class AlgoSection(Section, title="algo"):
    name: str

    def used(self) -> dict[str, Any]:
        """The hyperparameters of this algorithm."""
        return self.model_dump(exclude={"name"})


class OffPolicyConfig(AlgoSection):
    learning_rate: float = Field(1e-3, gt=0)  # critics (and SAC's log-std head)
    actor_learning_rate: float = Field(1e-4, gt=0)
    batch_size: Count = 100
    buffer_size: Count = 1_000_000
    learning_starts: int = Field(10_000, ge=0)
    train_freq: Count = 50
    gradient_steps: Count = 50
    gamma: Fraction = 0.99
    tau: Fraction = 0.005
    critic_hidden_sizes: Sizes = [256, 256]


class TD3Config(OffPolicyConfig):
    name: Literal["td3"] = "td3"
    action_noise: float = Field(0.1, ge=0)
    policy_delay: Count = 2
    target_policy_noise: float = Field(0.2, ge=0)
    target_noise_clip: float = Field(0.5, ge=0)


class DDPGConfig(OffPolicyConfig):
    name: Literal["ddpg"] = "ddpg"
    action_noise: float = Field(0.1, ge=0)


class SACConfig(OffPolicyConfig):
    name: Literal["sac"] = "sac"
    ent_coef: float | str = Field(0.2, union_mode="left_to_right")  # a number >= 0, "auto" or "auto_<init>"

    @field_validator("ent_coef")
    @classmethod
    def _ent_coef(cls, value: float | str) -> float | str:
        if isinstance(value, str) and not re.fullmatch(r"auto(_.+)?", value) or isinstance(value, float) and value < 0:
            raise ValueError(f"algo.ent_coef must be a number >= 0, 'auto' or 'auto_<init>', got {value!r}")
        return value


class PPOConfig(AlgoSection):
    name: Literal["ppo"] = "ppo"
    learning_rate: float = Field(1e-4, gt=0)  # value function
    actor_learning_rate: float = Field(1e-5, gt=0)  # actor network and log-std
    batch_size: Count = 100
    n_steps: Count = 1000
    n_epochs: Count = 25
    gamma: Fraction = 0.99
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.001, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    log_std_init: float = -0.5
    critic_hidden_sizes: Sizes = [256, 256]


AlgoConfig = TD3Config | DDPGConfig | SACConfig | PPOConfig
ALGORITHMS = {cls.model_fields["name"].default: cls for cls in typing.get_args(AlgoConfig)}
ALGO_NAMES = tuple(ALGORITHMS)


class TrainConfig(Section, title="train"):
    timesteps: Count = 100_000
    seed: int = 0
    eval_freq: Count = 10_000  # environment steps between evaluations (and checkpoints)
    eval_episodes: Count = 10
    checkpoint_freq: Count = 10_000
    keep_checkpoints: Count = 2
    num_threads: Count = 1
    device: str = "cpu"
    progress_bar: bool = True
    framework: Literal[FRAMEWORKS] = "sb3"
    num_env_runners: int = Field(0, ge=0)  # RLlib only: 0 samples in the driver process

    @field_validator("seed")
    @classmethod
    def _seed_range(cls, value: int) -> int:
        if not 0 <= value < 2**32:  # what numpy's and torch's generators accept
            raise ValueError(f"train.seed must be in [0, 2**32 - 1], got {value}")
        return value


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


class NoiseConfig(Section, title="noise"):
    """NoisySAN exploration noise and noise reduction (docs/methods.md, NoisySAN); used with actor ``noisysan``."""

    beta: float = Field(1.0, ge=0)  # 1/f^beta: 0 white, 1 pink, 2 brown
    horizon: Count = 1000  # environment steps per episode, for the noise's low-frequency cutoff
    table_size: Count = 2**24  # samples in the shared noise table (power of two; 4 bytes each)
    reduction_max: float = 1.0  # k_max
    reduction_floor: float = 0.0  # R_floor: below this evaluation return k = 0
    reduction_ceilings: dict[str, float] = dict(PAPER_NOISE_CEILINGS)

    @field_validator("table_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"noise.table_size must be a power of two, got {value}")
        return value

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


class RunConfig(Section):
    env: EnvConfig = EnvConfig()
    actor: ActorConfig = ActorConfig()
    algo: AlgoConfig = Field(TD3Config(), discriminator="name")
    train: TrainConfig = TrainConfig()
    noise: NoiseConfig = NoiseConfig()

    @model_validator(mode="before")
    @classmethod
    def _resolve_algo(cls, data: Any) -> Any:
        """``algo.name`` defaults to td3; a hyperparameter of another algorithm is named as such; NoisySAN trains
        with TD3 and explores through network noise only (no action noise)."""
        if not isinstance(data, dict) or not isinstance(data.get("algo", {}), dict):
            return data  # pydantic reports the malformed input
        algo = {"name": "td3", **data.get("algo", {})}
        name = algo["name"]
        if not isinstance(name, str) or name not in ALGORITHMS:
            raise ValueError(f"algo.name: unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
        uses = list(ALGORITHMS[name].model_fields)[1:]
        for key in set(algo) - {"name", *uses}:
            if any(key in other.model_fields for other in ALGORITHMS.values()):
                raise ValueError(f"algo.{key} does not apply to {name} (it uses: {', '.join(uses)})")
        actor = data.get("actor")
        if isinstance(actor, dict) and actor.get("name", ActorConfig.name) == "noisysan":
            if name != "td3":
                raise ValueError(f"actor noisysan trains with algo td3 only (network-noise exploration), got {name!r}")
            if algo.get("action_noise") not in (None, 0, 0.0):
                raise ValueError(
                    "actor noisysan explores through network noise only: algo.action_noise must be 0, "
                    f"got {algo['action_noise']!r}"
                )
            algo["action_noise"] = 0.0
        elif data.get("noise"):
            raise ValueError("section noise applies only to actor noisysan")
        return {**data, "algo": algo}

    @model_validator(mode="after")
    def _check_combination(self) -> RunConfig:
        if self.train.framework == "rllib" and self.algo.name not in RLLIB_ALGO_NAMES:
            raise ValueError(
                f"algo.name: {self.algo.name} is not available with framework rllib (RLlib 2.60 has no TD3/DDPG); "
                f"use {' or '.join(RLLIB_ALGO_NAMES)}, or framework sb3"
            )
        if self.actor.name == "noisysan":
            self.noise.ceiling(self.env.id)
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude=None if self.actor.name == "noisysan" else {"noise"})


_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true/false", "string": "a string", "list": "a list"}
_EXPECTED |= dict.fromkeys(("dict", "model", "dataclass"), "a mapping")
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")
_QUOTED = re.compile(r"'([^']*)'")  # the choices in a literal_error's "'a', 'b' or 'c'"


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)


def _num(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _walk(model: Any, loc: tuple, path: str = "") -> tuple[str, Any]:
    """The key path of ``loc`` (union tags dropped) and the model or dataclass found at its end (or None)."""
    for key in loc:
        if typing.get_origin(model) in (typing.Union, types.UnionType):  # discriminated on name: key is the tag
            model = next(m for m in typing.get_args(model) if m.model_fields["name"].default == key)
            continue
        path = _join(path, key)
        fields = getattr(model, "model_fields", {})
        model = fields[key].annotation if key in fields else None
    return path, model


def describe(error: ValidationError, model: type, path: str = "") -> str:
    """Pydantic's first error, as one line that names its key path; unknown keys are listed with the valid ones."""
    errors = error.errors()
    kind, loc, value, ctx = errors[0]["type"], errors[0]["loc"], errors[0]["input"], errors[0].get("ctx", {})
    where, parent = _walk(model, loc[:-1], path)
    if kind in _UNKNOWN_KEY:
        names = ", ".join(str(e["loc"][-1]) for e in errors if e["type"] in _UNKNOWN_KEY and e["loc"][:-1] == loc[:-1])
        fields = (
            [f.name for f in dataclasses.fields(parent)] if dataclasses.is_dataclass(parent) else parent.model_fields
        )
        return f"unknown {f'key(s) in {where}' if where else 'section(s)'}: {names}; valid: {', '.join(fields)}"
    if "error" in ctx:  # a validator's ValueError, already worded for the user
        return str(ctx["error"])
    where = _join(where, loc[-1]) if loc else where
    if len(ctx) == 1 and next(iter(ctx)) in _BOUNDS:
        if isinstance(next(iter(ctx.values())), float):  # an integer input is shown as the float it became
            value = float(value)
        field = getattr(parent, "model_fields", {}).get(loc[-1])
        bounds = {key: getattr(m, key) for m in getattr(field, "metadata", ()) for key in _BOUNDS if hasattr(m, key)}
        if len(bounds) == 2:  # an interval, e.g. (0, 1]
            (low_key, low), (high_key, high) = sorted(bounds.items(), key=lambda item: item[0][0] == "l")
            left, right = "[("[low_key == "gt"], "])"[high_key == "lt"]
            return f"{where} must be in {left}{_num(low)}, {_num(high)}{right}, got {value}"
        ((key, limit),) = ctx.items()
        return f"{where} must be {_BOUNDS[key]} {_num(limit)}, got {value}"
    if kind == "too_short":
        return f"{where} must have at least {ctx['min_length']} item(s), got {value!r}"
    if kind == "literal_error":
        return f"{where}: unknown {value!r}; valid: {', '.join(_QUOTED.findall(ctx['expected']))}"
    expected = _EXPECTED.get(kind.split("_")[0])
    if expected == "a mapping" and "." not in where:
        return f"section {where!r} must be a mapping, got {value!r}"
    if expected:
        return f"{where}: expected {expected}, got {value!r}"
    return f"{where}: {errors[0]['msg']}"


def config_sections(config_class: type[BaseModel]) -> dict[str, Any]:
    """Section name -> section type of a run-config model (its fields, in order)."""
    return {name: field.annotation for name, field in config_class.model_fields.items()}


def build_config(config_class: type[T], data: Any) -> T:
    """``config_class`` validated from a mapping of sections (an empty section takes its defaults); pydantic's
    first error is raised as one-line :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    data = {name: {} if values is None else values for name, values in data.items()}
    try:
        return config_class.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe(err, config_class)) from None


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
