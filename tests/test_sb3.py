"""SB3 integration: every algorithm x actor trains, save/load reproduces actions, learning rates stay separate."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import TINY_ACTOR

from agents.sb3 import ALGORITHMS, POLICIES, TD3
from agents.sb3.td3 import ILCSANPolicy, NetworkTD3Actor
from envs import make_vec_env

ALGO_KWARGS = {
    "td3": {"learning_starts": 100, "batch_size": 32, "train_freq": 50, "gradient_steps": 10},
    "ddpg": {"learning_starts": 100, "batch_size": 32, "train_freq": 50, "gradient_steps": 10},
    "sac": {"learning_starts": 100, "batch_size": 32, "train_freq": 50, "gradient_steps": 10, "ent_coef": 0.2},
    "ppo": {"n_steps": 128, "batch_size": 32, "n_epochs": 2},
}


@pytest.mark.parametrize("actor", ["mlp", "popsan", "ilcsan"])
@pytest.mark.parametrize("algo", ["td3", "ddpg", "sac", "ppo"])
def test_train_save_load_identical_actions(algo: str, actor: str, tmp_path) -> None:
    env = make_vec_env("InvertedPendulum-v5", n_envs=1, seed=0)
    model = ALGORITHMS[algo](
        POLICIES[algo],
        env,
        policy_kwargs={"actor_config": {"name": actor, **TINY_ACTOR}},
        learning_rate=1e-3,
        actor_learning_rate=1e-4,
        seed=0,
        **ALGO_KWARGS[algo],
    )
    model.learn(300)
    assert model.num_timesteps >= 300

    # learning rates were refreshed by train() and stayed separate
    optimizers = [model.policy.optimizer] if algo == "ppo" else [model.actor.optimizer, model.critic.optimizer]
    rates = {(g.get("lr_role"), g["lr"]) for opt in optimizers for g in opt.param_groups}
    assert rates == {("actor", 1e-4), (None, 1e-3)}

    raw = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32) * 2
    path = tmp_path / "model.zip"
    model.save(path)
    # the observation statistics of the VecNormalize env (clip ±3) are saved inside the model
    stats = model.obs_normalization
    np.testing.assert_array_equal(stats.mean, env.obs_rms.mean)
    assert stats.clip == 3.0
    expected, _ = model.policy.predict(stats.normalize(raw), deterministic=True)

    loaded = ALGORITHMS[algo].load(path)
    actions, _ = loaded.predict(raw, deterministic=True)  # no env: the model normalises raw observations
    np.testing.assert_array_equal(actions, expected)
    assert np.all(np.abs(actions) <= 3.0 + 1e-6)  # InvertedPendulum action bounds are ±3

    # with a VecNormalize env, the saved statistics can be restored into it
    fresh = make_vec_env("InvertedPendulum-v5", n_envs=1, seed=1)
    loaded.restore_normalization(fresh)
    np.testing.assert_array_equal(fresh.obs_rms.var, env.obs_rms.var)


def test_sb3_style_usage_and_target_actor() -> None:
    env = make_vec_env("InvertedPendulum-v5", seed=0)
    model = TD3(ILCSANPolicy, env, policy_kwargs={"actor_config": TINY_ACTOR}, learning_starts=50, seed=0)
    assert isinstance(model.actor_target, NetworkTD3Actor)
    assert model.actor_target is not model.actor
    assert not model.actor_target.training
    assert model.actor.network.event_driven and model.actor_target.network.event_driven  # reads polyak writes
    network = model.actor_network
    assert type(network).__name__ == "ILCSAN"
    model.learn(100)
    assert network.activity().sops > 0


def test_string_alias() -> None:
    model = TD3("PopSANPolicy", make_vec_env("InvertedPendulum-v5", seed=0), policy_kwargs={"actor_config": TINY_ACTOR})
    assert type(model.actor_network).__name__ == "PopSAN"


def test_unknown_actor_config_key() -> None:
    with pytest.raises(ValueError, match="unknown actor_config keys: neurons"):
        TD3(ILCSANPolicy, make_vec_env("InvertedPendulum-v5", seed=0), policy_kwargs={"actor_config": {"neurons": 3}})
