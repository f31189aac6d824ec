"""RLlib (new API stack) training with spiking RLModules: CLI run directory, TensorBoard, eval, resume, and
checkpoints that restore to identical actions. Ray starts once per test process (``init_ray`` reuses it)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from experiments.run_dir import RunDirectory

TINY = [
    "--set", "actor.hidden_sizes=[32, 32]", "--set", "actor.timesteps=3", "--set", "actor.encoder_pop=4",
    "--set", "actor.decoder_pop=4", "--set", "algo.critic_hidden_sizes=[32, 32]", "--set", "train.eval_freq=200",
    "--set", "train.checkpoint_freq=200", "--set", "train.eval_episodes=1", "--no-progress",
]  # fmt: skip


def random_obs(dim: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(8, dim)).astype(np.float32) * 2


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory) -> Path:
    """PopSAN + RLlib PPO on Hopper-v5: 2 iterations of 200 steps, then resumed to 600 steps."""
    run = tmp_path_factory.mktemp("rllib") / "ppo"
    ppo = ["--set", "algo.n_steps=200", "--set", "algo.batch_size=50", "--set", "algo.n_epochs=2"]
    flags = ["--framework", "rllib", "--num-env-runners", 0, "--algo", "ppo", "--actor", "popsan", "--env", "Hopper-v5"]
    assert run_cli("train", *flags, "--timesteps", 400, "--seed", 1, "--run-dir", run, *TINY, *ppo) == 0
    assert run_cli("train", "--resume", run, "--timesteps", 600, "--no-progress") == 0
    return run


def test_ppo_run_directory(ppo_run: Path) -> None:
    run = RunDirectory(ppo_run)
    config = run.load_config()
    assert config.train.framework == "rllib" and config.algo.name == "ppo" and config.actor.name == "popsan"
    rows = list(csv.DictReader(run.evaluations_file.open()))
    assert [int(r["timesteps"]) for r in rows] == [200, 400, 600]
    assert all(float(r["sops_per_action"]) > 0 for r in rows)  # spiking activity measured during evaluation
    events = list((ppo_run / "tensorboard" / "rllib").glob("events.out.tfevents.*"))
    assert len(events) == 2  # one writer per training session (initial + resume)
    assert run.latest_checkpoint().timesteps == 600 and run.latest_checkpoint().rllib.is_dir()
    assert (ppo_run / "rllib").is_dir() and (ppo_run / "DONE").read_text().strip() == "600"


def test_ppo_checkpoint_restores_identical_actions(ppo_run: Path) -> None:
    from agents.rllib.policy import RLlibPolicy
    from experiments.rllib_training import load_algorithm

    run = RunDirectory(ppo_run)
    final = RLlibPolicy.from_algorithm(load_algorithm(run.final_rllib))
    latest = RLlibPolicy.from_algorithm(load_algorithm(run.latest_checkpoint().rllib))
    obs = random_obs(11)
    actions, _ = final.predict(obs)
    assert actions.shape == (8, 3) and np.all(np.abs(actions) <= 1)
    np.testing.assert_array_equal(actions, latest.predict(obs)[0])
    assert final.obs_filter is not None  # observations normalised with the trained statistics
    assert type(final.actor_network).__name__ == "PopSAN"


def test_eval_loads_rllib_checkpoint(ppo_run: Path, capsys) -> None:
    assert run_cli("eval", ppo_run, "--episodes", 2) == 0
    assert "firing rates" in capsys.readouterr().out
    result = json.loads((ppo_run / "eval.json").read_text())
    assert len(result["returns"]) == 2 and result["spiking"] is True
    assert set(result["firing_rates"]) == {"encoder", "hidden1", "hidden2", "output"}


def test_unsigned_or_modified_rllib_checkpoints_are_refused(ppo_run: Path, tmp_path: Path, capsys) -> None:
    """RLlib checkpoints hold pickles: the final ``rllib/`` and every checkpoint are signed when written and
    restored only if unchanged and signed with the user's key, or under --trust."""
    import pickle
    import shutil

    from experiments.bad_input import Payload

    run = tmp_path / "copy"
    shutil.copytree(ppo_run, run)
    marker = tmp_path / "code-ran"
    state = next(p for p in sorted((run / "rllib").rglob("*.pkl")))
    state.write_bytes(pickle.dumps(Payload(marker)))
    assert run_cli("eval", run, "--episodes", 1) == 2
    assert f"{state} changed after it was written" in capsys.readouterr().err
    for signature in run.rglob("signature.json"):
        signature.unlink()  # a run from elsewhere: nothing signed
    with (run / "evaluations.csv").open("a") as rows:
        rows.write("700,1.0,0.0,10,0.0,99.0\n")  # a row after the latest checkpoint, which a resume would drop
    evaluations = (run / "evaluations.csv").read_text()
    for args in (["eval", run, "--episodes", 1], ["eval", run, "--checkpoint", "latest", "--episodes", 1],
                 ["train", "--resume", run, "--timesteps", 800, "--no-progress"]):  # fmt: skip
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err
        assert "refusing to load" in err and "/rllib: it is a pickle" in err and "--trust" in err, err
    assert not marker.exists()  # nothing was unpickled
    assert (run / "evaluations.csv").read_text() == evaluations  # the refused resume changed nothing
    assert run_cli("eval", run, "--checkpoint", "latest", "--episodes", 1, "--trust") == 0  # trusted: loaded


@pytest.mark.slow
def test_sac_trains_spiking_actor_and_restores(tmp_path: Path) -> None:
    """ILC-SAN + RLlib SAC: gradient updates move the actor network; the checkpoint restores it exactly."""
    from agents.rllib.policy import RLlibPolicy
    from experiments.config import RunConfig
    from experiments.rllib_training import algorithm_config, load_algorithm, train_rllib

    overrides = {
        "env": {"id": "Hopper-v5"},
        "actor": {"name": "ilcsan", "hidden_sizes": [32, 32], "timesteps": 3, "encoder_pop": 4, "decoder_pop": 4},
        "algo": {"name": "sac", "learning_starts": 100, "batch_size": 32, "train_freq": 50, "gradient_steps": 5,
                 "critic_hidden_sizes": [32, 32]},
        "train": {"framework": "rllib", "timesteps": 300, "eval_freq": 300, "eval_episodes": 1,
                  "checkpoint_freq": 300, "progress_bar": False},
    }  # fmt: skip
    config = RunConfig.load(None, overrides)
    initial = algorithm_config(config).build_algo()
    before = {k: v.clone() for k, v in initial.get_module().network.state_dict().items()}
    initial.stop()
    result = train_rllib(config, RunDirectory(tmp_path / "sac"))
    trained = result.algorithm.get_module().network
    assert type(trained).__name__ == "ILCSAN" and result.num_timesteps >= 300
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())  # the actor learned
    obs = random_obs(11)
    restored = RLlibPolicy.from_algorithm(load_algorithm(tmp_path / "sac" / "rllib"))
    np.testing.assert_array_equal(
        RLlibPolicy.from_algorithm(result.algorithm).predict(obs)[0], restored.predict(obs)[0]
    )
    result.algorithm.stop()


def test_rllib_rejects_td3_and_negative_runners(tmp_path: Path, capsys) -> None:
    assert run_cli("train", "--framework", "rllib", "--algo", "td3", "--run-dir", tmp_path / "x") == 2
    assert "RLlib 2.60 has no TD3/DDPG" in capsys.readouterr().err
    assert run_cli("train", "--framework", "rllib", "--algo", "ppo", "--num-env-runners", -1) == 2
    assert "num_env_runners must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
