"""Config loading: YAML + overrides, recipe defaults per algorithm, and rejection of bad input by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.config import ConfigError, RunConfig, parse_override

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_recipe_configs_load() -> None:
    for name in ("td3_mlp", "td3_popsan", "td3_ilcsan", "quickstart"):
        config = RunConfig.load(EXPERIMENTS / f"{name}.yaml")
        assert config.algo.name == "td3"
    paper = RunConfig.load(EXPERIMENTS / "td3_ilcsan.yaml")
    assert paper.algo.actor_learning_rate == 1e-4 and paper.algo.learning_rate == 1e-3  # "1.0e-4" strings coerced
    assert paper.algo.batch_size == 100 and paper.algo.learning_starts == 10_000
    assert paper.actor.timesteps == 5 and paper.actor.encoder_pop == 10 and paper.env.clip_obs == 3.0


def test_algorithm_defaults_and_overrides() -> None:
    sac = RunConfig.from_dict({"algo": {"name": "sac"}})
    assert sac.algo.ent_coef == 0.2 and "policy_delay" not in sac.algo.used()  # TD3 only
    ppo = RunConfig.load(None, {"algo": {"name": "ppo", "n_epochs": 3}, "actor": {"name": "popsan"}})
    assert ppo.algo.n_epochs == 3 and ppo.algo.actor_learning_rate == 1e-5
    assert parse_override("actor.hidden_sizes=[64, 64]") == ("actor", "hidden_sizes", [64, 64])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"algo": {"name": "a2c"}}, "unknown algorithm 'a2c'; valid: td3, ddpg, sac, ppo"),
        ({"algo": {"lerning_rate": 1e-3}}, "unknown key\\(s\\) in algo: lerning_rate"),
        ({"trian": {}}, "unknown section\\(s\\): trian"),
        ({"algo": {"name": "sac", "policy_delay": 2}}, "algo.policy_delay does not apply to sac"),
        ({"train": {"timesteps": "many"}}, "train.timesteps: expected an integer"),
        ({"actor": {"hidden_sizes": 256}}, "actor.hidden_sizes: expected a list"),
        ({"actor": {"name": "lstm"}}, "valid: mlp, popsan, ilcsan"),
        ({"train": {"eval_freq": 0}}, "train.eval_freq must be >= 1"),
    ],
)
def test_bad_config_is_rejected_by_name(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        RunConfig.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("algo: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.load(broken)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("timesteps=5")


def _load_suite(path: Path) -> list:
    from experiments.suites import load_suite

    return load_suite(path).trials()  # resolves and validates every trial's run config


def _load_blimp(path: Path):
    from experiments.blimp_config import EvolveConfig

    config = EvolveConfig.load(path)
    assert EvolveConfig.from_dict(config.to_dict()) == config  # what a run directory saves loads back the same
    return config


def _load_traffic(path: Path):
    from experiments.traffic_config import TrafficRunConfig

    config = TrafficRunConfig.load(path)
    assert TrafficRunConfig.from_dict(config.to_dict()) == config
    return config


def _load_run(path: Path):
    config = RunConfig.load(path)
    assert RunConfig.from_dict(config.to_dict()) == config
    return config


# kind -> (does a file's top level mark it as this kind, the loader that validates it)
CONFIG_KINDS = {
    "rl run": (lambda data: "algo" in data, _load_run),
    "blimp evolution": (lambda data: "network" in data or "evolution" in data, _load_blimp),
    "traffic": (lambda data: "scenario" in data, _load_traffic),
    "suite": (lambda data: "grid" in data, _load_suite),
}
EXPERIMENT_CONFIGS = sorted(EXPERIMENTS.glob("*.yaml"))


def config_kinds(path: Path) -> list[str]:
    from experiments.config import read_yaml

    data = read_yaml(path)
    return [kind for kind, (claims, _) in CONFIG_KINDS.items() if claims(data)]


@pytest.mark.parametrize("path", EXPERIMENT_CONFIGS, ids=lambda path: path.name)
def test_every_experiment_config_loads_with_its_loader(path: Path, monkeypatch) -> None:
    monkeypatch.chdir(EXPERIMENTS.parent)  # suites name their base config relative to the repository root
    kinds = config_kinds(path)
    assert len(kinds) == 1, f"{path.name} must be claimed by exactly one loader, got {kinds or 'none'}"
    CONFIG_KINDS[kinds[0]][1](path)


def test_every_config_kind_has_an_experiment_config(tmp_path: Path) -> None:
    assert {config_kinds(path)[0] for path in EXPERIMENT_CONFIGS} == set(CONFIG_KINDS)
    stray = tmp_path / "stray.yaml"
    stray.write_text("train: {seed: 0}\n")  # no algo, network, scenario or grid: no loader claims it
    assert config_kinds(stray) == []
