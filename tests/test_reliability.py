"""Crash safety, concurrency and bad input of training runs: real training processes killed (SIGKILL) at chosen
points of a checkpoint write through the ``SPIKERL_FAULT`` hook, then resumed."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import TINY_ACTOR, run_cli, tiny_td3_overrides
from stable_baselines3.common.save_util import load_from_pkl

import train_agent
from agents.export.quantization import ExportError, observations_to_q16
from agents.sb3 import ALGORITHMS, POLICIES
from envs import NonFiniteObservationError, make_vec_env
from experiments import cli
from experiments.bad_input import NAN_ENV, Payload
from experiments.run_dir import FAULT_ENV, FILE_MODE, LOCK_FILE, RunDirectory

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--algo", "td3", "--actor", "mlp", "--env", "InvertedPendulum-v5", "--seed", "1",
        *tiny_td3_overrides(snn_steps=3, every=100, eval_episodes=1)]  # fmt: skip


def train_process(*args: object, fault: str | None = None) -> subprocess.CompletedProcess:
    """``python train_agent.py train ARGS`` in a child process, SIGKILLed at ``fault`` (see fault_point)."""
    env = {key: value for key, value in os.environ.items() if key != FAULT_ENV}
    if fault is not None:
        env[FAULT_ENV] = fault
    command = [sys.executable, str(ROOT / "train_agent.py"), "train", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


def evaluation_steps(run: Path) -> list[int]:
    return [int(row["timesteps"]) for row in csv.DictReader((run / "evaluations.csv").open())]


def tensorboard_steps(run: Path, tag: str = "eval/mean_return") -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (log,) = (run / "tensorboard").iterdir()
    events = EventAccumulator(str(log), purge_orphaned_data=True)
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def transitions(checkpoint: Path) -> int:
    return load_from_pkl(checkpoint / "replay_buffer.pkl").size()


def leftovers(run: Path) -> list[str]:
    """Staging directories and temporary files of interrupted saves."""
    return sorted(p.name for d in (run, run / "checkpoints") for p in d.iterdir() if p.name.startswith(".")
                  and p.name != LOCK_FILE)  # fmt: skip


# ---- 4, 7, 8: kill during a checkpoint write; LATEST stays usable; N transitions at step N -----------
def test_kill_while_staging_then_resume_loses_nothing(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    result = train_process(*TINY, "--timesteps", 400, "--run-dir", run, fault="checkpoint_staged:3")
    assert killed(result), result.stderr[-2000:]
    assert evaluation_steps(run) == [100, 200, 300]  # evaluated at 300, killed before checkpoint 300 landed
    assert RunDirectory(run).latest_checkpoint().timesteps == 200
    assert any(name.startswith(".step_000000300.") for name in leftovers(run))

    assert run_cli("train", "--resume", run) == 0
    assert leftovers(run) == []  # the staging directory of the interrupted save is gone
    assert evaluation_steps(run) == [100, 200, 300, 400]  # the row after the checkpoint was dropped, redone once
    assert tensorboard_steps(run) == [100, 200, 300, 400]
    walls = [float(r["wall_time_s"]) for r in csv.DictReader((run / "evaluations.csv").open())]
    assert walls == sorted(walls)
    checkpoints = run / "checkpoints"
    assert transitions(checkpoints / "step_000000300") == 300  # a checkpoint at step N holds N transitions
    assert transitions(checkpoints / "step_000000400") == 400
    assert (run / "DONE").read_text() == "400\n"


def test_kill_during_resave_of_latest_step_falls_back_and_recovers(tmp_path: Path, capsys) -> None:
    """The final save re-writes the step LATEST names (total a multiple of checkpoint_freq): killed after the old
    copy was renamed aside and before the new one is in place."""
    run = tmp_path / "run"
    result = train_process(*TINY, "--timesteps", 200, "--run-dir", run, fault="checkpoint_aside")
    assert killed(result), result.stderr[-2000:]
    assert not (run / "checkpoints" / "step_000000200").exists()  # LATEST names a step that is aside
    assert run_cli("eval", run, "--checkpoint", "latest", "--episodes", 1) == 0
    assert "using the newest intact checkpoint, step_000000100" in capsys.readouterr().err
    assert run_cli("train", "--resume", run) == 0
    assert RunDirectory(run).latest_checkpoint().timesteps == 200  # the renamed-aside copy was put back
    assert leftovers(run) == [] and (run / "DONE").read_text() == "200\n"


# ---- 5, 6: a resume's new total survives a kill; evaluations and TensorBoard are cut back ----------
def test_resume_with_more_timesteps_keeps_the_new_total(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("train", *TINY, "--timesteps", 200, "--run-dir", run) == 0
    result = train_process("--resume", run, "--timesteps", 400, fault="checkpoint_latest:1")
    assert killed(result), result.stderr[-2000:]  # killed right after checkpoint 300
    assert run_cli("train", "--resume", run) == 0  # no --timesteps: the 400 given before is kept
    assert (run / "DONE").read_text() == "400\n"
    assert evaluation_steps(run) == [100, 200, 300, 400] == tensorboard_steps(run)
    assert transitions(run / "checkpoints" / "step_000000400") == 400


# ---- 4: train --resume when LATEST names a missing or corrupt step ----------------------------------
@pytest.mark.parametrize("damage", ["deleted", "corrupt", "damaged_model"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(damage: str, tmp_path: Path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    assert run_cli("train", *TINY, "--timesteps", 200, "--run-dir", run) == 0
    step = run / "checkpoints" / "step_000000200"
    assert (run / "checkpoints" / "LATEST").read_text() == "step_000000200\n"
    if damage == "deleted":
        shutil.rmtree(step)
    elif damage == "corrupt":
        (step / "state.json").write_text("{")
    else:  # state.json intact, but the model's bytes differ from those signed at the save
        data = bytearray((step / "model.zip").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (step / "model.zip").write_bytes(bytes(data))
    capsys.readouterr()
    assert run_cli("train", "--resume", run, "--timesteps", 300) == 0
    captured = capsys.readouterr()
    warning = "; using the newest intact checkpoint, step_000000100"
    assert captured.err.count(warning) == 1, captured.err  # said once, though resuming looks it up twice
    assert "resuming" in captured.out and "from step_000000100 to 300 steps" in captured.out
    assert (run / "DONE").read_text() == "300\n"
    assert evaluation_steps(run) == [100, 200, 300] == tensorboard_steps(run)
    assert transitions(run / "checkpoints" / "step_000000300") == 300
    assert RunDirectory(run).latest_checkpoint().timesteps == 300


def test_resumed_tensorboard_files_sort_after_the_old_ones(tmp_path: Path, monkeypatch) -> None:
    """The one wait both frameworks' resumes use before their ``purge_step`` writer: past the newest file's second."""
    import time

    from experiments import rllib_training, training
    from experiments.run_dir import wait_past_event_files

    now = int(time.time())
    (tmp_path / f"events.out.tfevents.{now}.host.1.0").write_bytes(b"")
    (tmp_path / "events.out.tfevents.notastamp.host").write_bytes(b"")
    wait_past_event_files(tmp_path)
    assert time.time() >= now + 1
    assert training.wait_past_event_files is rllib_training.wait_past_event_files is wait_past_event_files
    started = time.time()
    wait_past_event_files(tmp_path / "missing")  # no files: no wait
    assert time.time() - started < 0.5


# ---- 9: a failure before the first checkpoint is recoverable ---------------------------------------
def test_failure_before_first_checkpoint_restarts_with_saved_config(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert killed(train_process(*TINY, "--timesteps", 200, "--run-dir", run, fault="checkpoint_staged:1"))
    assert run_cli("train", *TINY, "--timesteps", 200, "--run-dir", run) == 2
    assert f"use --resume {run}" in capsys.readouterr().err
    assert run_cli("train", "--resume", run) == 0
    out = capsys.readouterr().out
    assert "has no checkpoint yet: starting again from step 0 with its saved config" in out
    assert evaluation_steps(run) == [100, 200] and leftovers(run) == []


# ---- 3: one writer per run directory --------------------------------------------------------------
def test_second_writer_gets_the_holders_pid(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from experiments.run_dir import RunDirectory; "
         f"RunDirectory({str(run)!r}).lock(); print('locked', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run_cli("train", *TINY, "--timesteps", 100, "--run-dir", run) == 2
        err = capsys.readouterr().err
        assert f"{run} is in use by process {holder.pid}" in err and err.count("\n") == 1
        assert not (run / "config.yaml").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert run_cli("train", *TINY, "--timesteps", 100, "--run-dir", run) == 0  # released with its process


# ---- 2: pickles load only when signed with the user's key or trusted ------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("rel") / "run"
    assert run_cli("train", *TINY, "--timesteps", 200, "--run-dir", run) == 0
    return run


def test_unsigned_or_modified_pickles_are_refused(small_run: Path, tmp_path: Path, capsys) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    marker = tmp_path / "code-ran"
    latest = RunDirectory(run).latest_checkpoint()
    (latest.replay_buffer).write_bytes(pickle.dumps(Payload(marker)))
    # a checkpoint whose files changed after they were signed is not intact: resume takes the newest intact one
    older = RunDirectory(run).checkpoint_names()[-2]
    assert run_cli("train", "--resume", run, "--timesteps", latest.timesteps) == 0
    err = capsys.readouterr().err
    assert "replay_buffer.pkl changed after it was written" in err and f"newest intact checkpoint, {older}" in err
    assert not marker.exists()
    shutil.rmtree(run)
    shutil.copytree(small_run, run)
    (RunDirectory(run).latest_checkpoint().replay_buffer).write_bytes(pickle.dumps(Payload(marker)))
    for signature in run.rglob("signature.json"):
        signature.unlink()  # foreign files: nothing signed
    shutil.rmtree(run / "policy")
    for args in (
        ["eval", run],
        ["train", "--resume", run, "--timesteps", 300],
        ["package", run, "--out", tmp_path / "p"],
        ["export", run, "--out", tmp_path / "e"],
        ["export", run, "--out", tmp_path / "q", "--qat-steps", 10],
    ):
        assert run_cli(*args) == 2
        err = capsys.readouterr().err
        assert "refusing to load" in err and "is not signed with your key" in err and "--trust" in err
    assert not marker.exists()  # nothing was unpickled
    assert run_cli("train", "--resume", run, "--timesteps", 300, "--trust") == 2  # trusted: unpickled (and broken)
    assert marker.exists()


def test_qat_export_refuses_an_unsigned_replay_buffer(tmp_path: Path, capsys) -> None:
    """The final policy loads pickle-free (policy/); quantisation-aware fine-tuning then unpickles the latest
    checkpoint's replay buffer, which must be signed or trusted."""
    run = tmp_path / "spiking"
    spiking = [a if a != "mlp" else "ilcsan" for a in TINY]
    assert run_cli("train", *spiking, "--timesteps", 200, "--run-dir", run) == 0
    marker = tmp_path / "code-ran"
    checkpoint = RunDirectory(run).latest_checkpoint()
    checkpoint.replay_buffer.write_bytes(pickle.dumps(Payload(marker)))
    (checkpoint.path / "signature.json").unlink()
    assert run_cli("export", run, "--out", tmp_path / "q", "--qat-steps", 10, "--episodes", 1) == 2
    err = capsys.readouterr().err
    assert f"refusing to load {checkpoint.replay_buffer}" in err and "--trust" in err and not marker.exists()
    assert run_cli("export", run, "--out", tmp_path / "q", "--qat-steps", 10, "--episodes", 1, "--trust") == 2
    assert marker.exists()  # trusted: unpickled, and not a replay buffer
    assert f"replay buffer {checkpoint.replay_buffer} is corrupt" in capsys.readouterr().err


def test_crafted_policy_package_is_refused_in_one_line(small_run: Path, tmp_path: Path, capsys) -> None:
    """A package is safe to load from anyone: a policy.pt holding a pickle payload, with card.json's digest made to
    match, is refused by torch's weights-only unpickler with a one-line error, and nothing runs."""
    import json
    import shutil

    import torch

    from experiments.run_dir import file_digest

    package = shutil.copytree(small_run / "policy", tmp_path / "crafted")
    marker = tmp_path / "code-ran"
    torch.save({"weights": Payload(marker)}, package / "policy.pt")
    card = json.loads((package / "card.json").read_text())
    card["files"]["policy.pt"] = file_digest(package / "policy.pt")
    (package / "card.json").write_text(json.dumps(card))
    for args in (["eval", package, "--episodes", 1], ["export", package, "--out", tmp_path / "e"]):
        assert run_cli(*args) == 2
        err = capsys.readouterr().err
        refusal = "policy.pt does not fit the config: UnpicklingError: it holds objects other than tensors"
        assert err.count("\n") == 1 and refusal in err and "(Unsupported global" in err, err
    assert not marker.exists()


def test_policy_package_loads_without_pickle_and_matches(small_run: Path, tmp_path: Path, capsys) -> None:
    from experiments.frameworks import load_policy
    from experiments.policy_package import load_package

    package = tmp_path / "package"
    assert run_cli("package", small_run, "--out", package) == 0
    assert sorted(p.name for p in package.iterdir()) == ["card.json", "config.yaml", "normalization.npz", "policy.pt"]
    import torch

    torch.load(package / "policy.pt", weights_only=True)  # tensors only
    raw = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    from experiments.training import load_model

    run = RunDirectory(small_run)
    zipped = load_model(run.final_model, run.load_config())
    expected, _ = zipped.predict(raw, deterministic=True)
    for model in (load_package(package), load_policy(RunDirectory(package)), load_policy(run)):
        np.testing.assert_array_equal(model.predict(raw, deterministic=True)[0], expected)
    assert run_cli("eval", package, "--episodes", 1) == 0
    assert run_cli("package", small_run, "--out", package) == 0  # a package is replaced
    assert run_cli("package", small_run, "--out", small_run / "checkpoints") == 2
    assert "exists and is not a policy package" in capsys.readouterr().err
    with open(package / "normalization.npz", "ab") as handle:
        handle.write(b"x")
    assert run_cli("eval", package) == 2
    assert "normalization.npz is corrupt or was modified" in capsys.readouterr().err


# ---- 1: NaN in the last observation of an episode ------------------------------------------------
def test_nan_in_terminal_observation_is_caught() -> None:
    env = make_vec_env(NAN_ENV, normalize_obs=True)  # registered by experiments.bad_input
    env.reset()
    for _ in range(4):
        env.step(np.zeros((1, 1), np.float32))
    with pytest.raises(NonFiniteObservationError, match=r"non-finite last observation of an episode at env step 5"):
        env.step(np.zeros((1, 1), np.float32))


# ---- 10: one-line errors, before anything is written ----------------------------------------------
def test_bad_input_is_refused_before_the_run_directory_exists(small_run: Path, tmp_path: Path, capsys) -> None:
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("train: 5\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    target = tmp_path / "new"
    cases = [
        (["train", "--config", scalar, "--seed", 1, "--run-dir", target], "section 'train' must be a mapping, got 5"),
        (["train", "--seed", -1, "--run-dir", target], r"train.seed must be in \[0, 2\*\*32 - 1\], got -1"),
        (["train", "--set", "actor.hidden_sizes=[3", "--run-dir", target], "the value is not valid YAML"),
        (["train", "--set", "algo.batch_size=-1", "--run-dir", target], "algo.batch_size must be >= 1, got -1"),
        (["train", "--set", "algo.gamma=1.5", "--run-dir", target], r"algo.gamma must be in \(0, 1\], got 1.5"),
        (["train", "--env", "HalfCheeta-v5", "--run-dir", target], "unknown environment 'HalfCheeta-v5'"),
        (["train", "--env", "CartPole-v1", "--run-dir", target], r"continuous \(Box\) action space"),
        (["train", "--framework", "rllib", "--algo", "ppo", "--env", "CartPole-v1", "--run-dir", target], "Box"),
        (["train", *TINY, "--run-dir", a_file], f"run directory {a_file} cannot be created"),
        (["train", *TINY, "--run-dir", a_file / "below"], f"run directory {a_file / 'below'} cannot be created"),
        (["train", "--resume", small_run, "--timesteps", 0], "--timesteps must be >= 1, got 0"),
        (["train", "--resume", small_run, "--timesteps", 100], "--timesteps 100 is below the 200 steps of"),
        (["train", "--resume", small_run, "--run-dir", target], "--run-dir does not apply"),
        (["export", small_run, "--out", a_file], f"--out {a_file} cannot be created"),
        (["export", small_run, "--out", a_file / "x"], f"--out {a_file / 'x'} cannot be created"),
    ]
    import re

    for args, message in cases:
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1, (args, err)
    assert not target.exists()
    mtime = (small_run / "model.zip").stat().st_mtime_ns
    assert run_cli("train", "--resume", small_run, "--timesteps", 200) == 0  # finished: nothing rewritten
    assert "already finished at 200 steps" in capsys.readouterr().out
    assert (small_run / "model.zip").stat().st_mtime_ns == mtime


def test_only_user_errors_exit_2(monkeypatch) -> None:
    def internal_bug(args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "command_eval", internal_bug)
    with pytest.raises(ValueError, match="an internal bug"):  # its traceback is shown, not "error: ..."
        train_agent.main(["eval", "runs/any"])


# ---- 11: gymnasium's module:EnvId --------------------------------------------------------------------
def test_env_from_a_user_module(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "my_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('MyPendulum-v0', entry_point='gymnasium.envs.mujoco.inverted_pendulum_v5:InvertedPendulumEnv',"
        " max_episode_steps=1000)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    overrides = [a if a != "InvertedPendulum-v5" else "my_envs:MyPendulum-v0" for a in TINY]
    assert run_cli("train", *overrides, "--timesteps", 100, "--run-dir", tmp_path / "run") == 0
    assert evaluation_steps(tmp_path / "run") == [100]
    assert run_cli("train", "--env", "no_such_module:X-v0", "--run-dir", tmp_path / "x") == 2
    assert "cannot import module 'no_such_module'" in capsys.readouterr().err


# ---- 12: file modes ---------------------------------------------------------------------------------
def test_run_files_have_the_default_modes(small_run: Path) -> None:
    modes = {p.relative_to(small_run).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in small_run.rglob("*")}
    files = {name: mode for name, mode in modes.items() if (small_run / name).is_file()}
    assert set(files.values()) == {FILE_MODE}, files
    assert {"config.yaml", "evaluations.csv", "model.zip", "policy/policy.pt"} <= set(files)
    assert len({mode for name, mode in modes.items() if (small_run / name).is_dir()}) == 1  # one directory mode


# ---- 13: NaN into the integer policy ------------------------------------------------------------------
def test_observations_to_q16_refuses_nan() -> None:
    with pytest.raises(ExportError, match=r"observation is NaN at index \(1, 2\)"):
        observations_to_q16(np.array([[0.0, 1.0, 2.0], [0.5, 1.5, np.nan]]))
    np.testing.assert_array_equal(observations_to_q16(np.array([np.inf, -np.inf, 1.5])), [2**31 - 1, -(2**31), 98304])


# ---- 14: predict takes raw observations, in memory and after load ----------------------------------
@pytest.mark.parametrize("algo", ["td3", "ppo"])
def test_predict_takes_raw_observations_before_and_after_load(algo: str, tmp_path: Path) -> None:
    env = make_vec_env("InvertedPendulum-v5", seed=0)
    kwargs = {"ppo": {"n_steps": 128, "batch_size": 32, "n_epochs": 1}}.get(algo, {"learning_starts": 100})
    model = ALGORITHMS[algo](POLICIES[algo], env, policy_kwargs={"actor_config": {"name": "mlp", **TINY_ACTOR}},
                             seed=0, **kwargs)  # fmt: skip
    model.learn(300)
    assert np.abs(env.obs_rms.mean).max() > 1e-3  # statistics moved away from the identity
    raw = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
    in_memory, _ = model.predict(raw, deterministic=True)
    expected, _ = model.policy.predict(env.normalize_obs(raw), deterministic=True)
    np.testing.assert_array_equal(in_memory, expected)
    model.save(tmp_path / "model.zip")
    loaded = ALGORITHMS[algo].load(tmp_path / "model.zip")
    np.testing.assert_array_equal(loaded.predict(raw, deterministic=True)[0], in_memory)
