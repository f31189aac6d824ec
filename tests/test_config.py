"""Config loading: YAML + overrides, recipe defaults per algorithm, and rejection of bad input by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.config import ConfigError, config_from_dict, load_config, parse_override

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_recipe_configs_load() -> None:
    for name in ("td3_mlp", "td3_popsan", "td3_ilcsan", "quickstart"):
        config = load_config(EXPERIMENTS / f"{name}.yaml")
        assert config.algo.name == "td3"
    paper = load_config(EXPERIMENTS / "td3_ilcsan.yaml")
    assert paper.algo.actor_learning_rate == 1e-4 and paper.algo.learning_rate == 1e-3  # "1.0e-4" strings coerced
    assert paper.algo.batch_size == 100 and paper.algo.learning_starts == 10_000
    assert paper.actor.timesteps == 5 and paper.actor.encoder_pop == 10 and paper.env.clip_obs == 3.0


def test_algorithm_defaults_and_overrides() -> None:
    sac = config_from_dict({"algo": {"name": "sac"}})
    assert sac.algo.ent_coef == 0.2 and sac.algo.policy_delay is None
    ppo = load_config(None, {"algo": {"name": "ppo", "n_epochs": 3}, "actor": {"name": "popsan"}})
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
        config_from_dict(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("algo: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("timesteps=5")
