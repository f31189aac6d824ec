"""End-to-end CLI: run directory contents, resume, evaluation, and clear errors for bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import run_cli, tiny_td3_overrides
from PIL import Image

import train_agent
from experiments import cli
from experiments.run_dir import RunDirectory


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """300 steps, then resumed to 600 steps (ILC-SAN + TD3 on InvertedPendulum-v5)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    overrides = tiny_td3_overrides(snn_steps=3, every=200, eval_episodes=2)
    assert run_cli("train", "--algo", "td3", "--actor", "ilcsan", "--env", "InvertedPendulum-v5",
                   "--timesteps", 300, "--seed", 3, "--run-dir", run, *overrides) == 0  # fmt: skip
    assert run_cli("train", "--resume", run, "--timesteps", 600, "--no-progress") == 0
    return run


def test_run_directory_contents(finished_run: Path) -> None:
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert config["actor"]["name"] == "ilcsan" and config["train"]["seed"] == 3
    assert config["algo"]["actor_learning_rate"] == 1e-4  # fully resolved recipe values
    meta = json.loads((finished_run / "metadata.json").read_text())
    assert meta["seed"] == 3 and meta["git_commit"] and "torch" in meta["versions"]
    rows = list(csv.DictReader((finished_run / "evaluations.csv").open()))
    assert [int(r["timesteps"]) for r in rows] == [200, 400, 600]
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls)  # the resumed part keeps counting
    assert list((finished_run / "tensorboard").rglob("events.out.tfevents.*"))
    assert (finished_run / "model.zip").is_file()
    run = RunDirectory(finished_run)
    assert run.latest_checkpoint().timesteps == 600
    assert len(run.checkpoint_names()) == 2  # keep_checkpoints


def test_resume_reaches_total_steps_with_replay_buffer(finished_run: Path) -> None:
    from experiments.training import load_model

    run = RunDirectory(finished_run)
    config = run.load_config()
    model = load_model(run.final_model, config)
    assert model.num_timesteps == 600
    model.load_replay_buffer(run.latest_checkpoint().replay_buffer)
    assert model.replay_buffer.size() == 600  # the 300 transitions from before the resume were kept


def test_eval_reports_returns_and_energy(finished_run: Path, capsys) -> None:
    assert run_cli("eval", finished_run, "--episodes", 2) == 0
    out = capsys.readouterr().out
    assert "return:" in out and "firing rates" in out and "energy per action" in out
    result = json.loads((finished_run / "eval.json").read_text())
    assert len(result["returns"]) == 2 and result["spiking"] is True
    assert set(result["firing_rates"]) == {"encoder", "hidden1", "hidden2", "output"}
    assert result["mlp_macs_per_action"] == 4 * 32 + 32 * 32 + 32 * 1


def test_corrupt_and_missing_checkpoints(finished_run: Path, tmp_path: Path, capsys) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken)
    (broken / "policy" / "policy.pt").write_bytes(b"not torch")
    assert run_cli("eval", broken) == 2
    assert f"{broken / 'policy' / 'policy.pt'} is corrupt or was modified" in capsys.readouterr().err
    shutil.rmtree(broken / "policy")  # without the package, eval reads SB3's model.zip
    (broken / "model.zip").write_bytes(b"not a zip")
    assert run_cli("eval", broken) == 2
    assert f"{broken / 'model.zip'} changed after it was written" in capsys.readouterr().err
    for name in RunDirectory(broken).checkpoint_names():
        (broken / "checkpoints" / name / "state.json").write_text("{")
    assert run_cli("train", "--resume", broken) == 2
    assert "state.json is missing or corrupt" in capsys.readouterr().err
    assert run_cli("eval", tmp_path / "nowhere") == 2
    assert "config.yaml is missing" in capsys.readouterr().err


def test_checkpoint_write_is_atomic(finished_run: Path, tmp_path: Path) -> None:
    """A crash while writing a checkpoint leaves the previous one as LATEST."""
    import shutil

    run_path = tmp_path / "copy"
    shutil.copytree(finished_run, run_path)
    run = RunDirectory(run_path)
    before = run.latest_checkpoint()

    class Crashing:
        replay_buffer = None

        def save(self, path):
            Path(path).write_bytes(b"partial")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint(Crashing(), 800, keep=2, state={})
    assert run.latest_checkpoint().path == before.path
    assert run.checkpoint_names()[-1] == before.path.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "HalfCheeta-v5"], "unknown environment 'HalfCheeta-v5'. Did you mean: HalfCheetah"),
        (["--env", "CartPole-v1"], "TD3 with these actors needs a continuous \\(Box\\) action space, but CartPole-v1"),
        (["--set", "algo.buffer=5"], "unknown key\\(s\\) in algo: buffer"),
        (["--env", "spikerl-test/NaNAfterSteps-v0", "--timesteps", "20"], "non-finite observation at env step 4"),
    ],
)
def test_bad_input_fails_with_message(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    code = run_cli("train", "--run-dir", tmp_path / "r", "--no-progress", "--set", "actor.hidden_sizes=[8]", *args)
    assert code == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_unknown_choice_lists_valid_ones(capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli("train", "--algo", "a2c")
    assert "choose from td3, ddpg, sac, ppo" in capsys.readouterr().err.replace("'", "")


def test_existing_run_dir_is_not_overwritten(finished_run: Path, capsys) -> None:
    assert run_cli("train", "--run-dir", finished_run) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_eval_video_through_offscreen_rendering(finished_run: Path, tmp_path: Path, capsys) -> None:
    """Headless machines render through EGL (the command line sets MUJOCO_GL=egl when there is no display)."""
    gif = tmp_path / "episode.gif"
    assert run_cli("eval", finished_run, "--episodes", 1, "--video", gif) == 0
    out = capsys.readouterr().out
    frames = int(re.search(r"video: .* \((\d+) frames\)", out).group(1))
    with Image.open(gif) as image:  # an animated GIF of the rendered episode (every second frame), not a blank
        assert image.format == "GIF" and image.n_frames == frames >= 2 and min(image.size) >= 64
        first = np.asarray(image.convert("RGB"))
        image.seek(image.n_frames - 1)
        last = np.asarray(image.convert("RGB"))
    assert first.std() > 1.0 and not np.array_equal(first, last)


def test_ctrl_c_exits_130_with_a_resume_hint(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "command_eval", interrupted)
    assert train_agent.main(["eval", "runs/any"]) == 130
    assert "continue with --resume" in capsys.readouterr().err
