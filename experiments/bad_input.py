"""Regenerate the bad-input table: each bad input of the reliability issue (and the ones handled before), the exit
code and the one line the command line prints.

Usage::

    python -m experiments.bad_input [--docs docs/reliability.md]

Trains one seconds-long run in a temporary directory, then feeds every case to ``experiments.cli.main`` in this
process and records the exit code and the message (paths shown relative to the temporary directory). An error
case fails the script (exit 1) unless it exits 2 with exactly one ``error:`` line; a case the command recovers
from (exit 0) fails it unless it exits 0 and prints the expected line (a warning, say). Checks made after a case
(the payload of a malicious pickle did not run, the run reached its total) go into the last column. Issue rows
that are not errors are rows that name the behaviour and where it is checked.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pickle
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--algo", "td3", "--actor", "mlp", "--env", "InvertedPendulum-v5", "--seed", "1", "--no-progress",
    "--set", "actor.hidden_sizes=[16]", "--set", "algo.learning_starts=50", "--set", "algo.batch_size=16",
    "--set", "train.eval_freq=100", "--set", "train.checkpoint_freq=100", "--set", "train.eval_episodes=1",
]  # fmt: skip
NAN_ENV = "spikerl-bad-input/NaNAtEpisodeEnd-v0"


class NaNAtEpisodeEnd(gym.Env):
    """Finite observations except the last of each 5-step episode (SB3 moves it to ``terminal_observation``)."""

    metadata = {"render_modes": ["rgb_array"]}
    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= 5
        return np.full(2, np.nan if end else 0.5, np.float32), 0.0, False, end, {}


if NAN_ENV not in gym.registry:
    gym.register(NAN_ENV, entry_point=NaNAtEpisodeEnd)


class Payload:
    """A pickle that creates a file when loaded (what a malicious model.zip or replay buffer would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@dataclass
class Case:
    issue: str  # where the case comes from (a row of the reliability issue, or "held" for earlier checks)
    what: str
    args: list[str] | Callable[[], str | None]  # CLI arguments, or a function that raises (or returns its line)
    setup: Callable[[], None] | None = None
    exit: int = 2  # expected exit code: 2 (one error line) or 0 (recovered; ``line`` is what it printed)
    line: str = "error:"  # the recorded line is the first output line that contains this
    check: Callable[[], str] | None = None  # after the case: raises AssertionError, or returns what it checked


@dataclass
class Behaviour:
    """An issue row that is not an error: what happens instead, and where that is checked."""

    issue: str
    what: str
    behaviour: str
    where: str


def run_case(case: Case) -> tuple[int, str, str]:
    """``(exit code, stderr, stdout)`` of the case."""
    from experiments import cli

    if case.setup is not None:
        case.setup()
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        if callable(case.args):
            try:
                line = case.args()
            except ValueError as error:
                print(f"{type(error).__name__}: {error}", file=sys.stderr)
                return 2, err.getvalue(), out.getvalue()
            print(line or "", file=sys.stderr)
            return 0, err.getvalue(), out.getvalue()
        try:
            code = cli.main([str(a) for a in case.args])
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, err.getvalue(), out.getvalue()


def cases(work: Path) -> tuple[list[Case | Behaviour], list[subprocess.Popen]]:
    """The cases, and the lock-holding processes that setups start (to be ended by the caller)."""
    from agents.export.quantization import observations_to_q16
    from experiments.run_dir import RunDirectory

    run = work / "run"
    marker = work / "code-ran"  # what every malicious pickle here creates if it is ever loaded
    a_file = work / "a_file"
    scalar = work / "scalar.yaml"
    new = work / "new"  # never holds a run: every case using it fails before anything is written
    locked = work / "locked"
    unsigned = work / "unsigned"
    modified = work / "modified"
    no_checkpoint = work / "no_checkpoint"
    holder: list[subprocess.Popen] = []

    def make_unsigned() -> None:
        shutil.copytree(run, unsigned)
        for signature in unsigned.rglob("signature.json"):
            signature.unlink()
        shutil.rmtree(unsigned / "policy")

    def make_modified() -> None:
        shutil.copytree(run, modified)
        buffer = RunDirectory(modified).latest_checkpoint().replay_buffer
        buffer.write_bytes(pickle.dumps(Payload(work / "code-ran")))

    def make_no_checkpoint() -> None:  # what a run killed before its first checkpoint leaves
        from experiments import cli

        args = cli.build_parser().parse_args(["train", *TINY, "--timesteps", "100"])
        RunDirectory(no_checkpoint).initialise(cli.resolve_train_config(args))

    def no_code_ran() -> str:
        assert not marker.exists(), "a malicious pickle was loaded"
        return "the payload did not run"

    def copy_run(name: str) -> Path:
        shutil.copytree(run, work / name)
        return work / name

    def drop_latest_step() -> None:  # a kill between the removal of a re-saved step and its replacement
        shutil.rmtree(copy_run("latest_deleted") / "checkpoints" / "step_000000200")

    def corrupt_latest_state() -> None:
        (copy_run("latest_corrupt") / "checkpoints" / "step_000000200" / "state.json").write_text("{")

    def finished(name: str, total: int, evaluations: list[int]) -> Callable[[], str]:
        def check() -> str:
            directory = RunDirectory(work / name)
            assert directory.finished_steps() == total, directory.finished_steps()
            steps = [int(row["timesteps"]) for row in directory.evaluation_rows()]
            assert steps == evaluations, steps
            assert not directory.evaluations_file.read_text().count("garbage")
            return f"DONE {total}; evaluations at {', '.join(map(str, steps))}"

        return check

    def corrupt_model() -> None:
        damaged = copy_run("corrupt_model")
        shutil.rmtree(damaged / "policy")
        (damaged / "model.zip").write_bytes(b"PK\x03\x04 not a zip any more")

    def corrupt_evaluation_line() -> None:
        rows = (copy_run("corrupt_csv") / "evaluations.csv").read_text().splitlines(keepends=True)
        rows.insert(2, "\x00\x00garbage,,;;\n")
        (work / "corrupt_csv" / "evaluations.csv").write_text("".join(rows))

    def break_run_config() -> None:
        (copy_run("bad_run_config") / "config.yaml").write_text("env: {id: Hopper-v5\n")

    def make_blimp_pickle() -> None:  # an evolution run of an older version, or a crafted one
        from experiments.blimp_config import EvolveConfig
        from experiments.blimp_evolution import EvolutionRun

        EvolutionRun(work / "blimp").initialise(EvolveConfig.load(None))
        (work / "blimp" / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(marker)))

    def make_rllib_pickle() -> None:  # a finished RLlib run from elsewhere whose checkpoint holds a payload
        from experiments.config import RunConfig

        rllib_run = RunDirectory(work / "rllib_run")
        rllib_run.initialise(RunConfig.load(None, {"train": {"framework": "rllib"}, "algo": {"name": "ppo"}}))
        rllib_run.final_rllib.mkdir()
        (rllib_run.final_rllib / "algorithm_state.pkl").write_bytes(pickle.dumps(Payload(marker)))
        rllib_run.done_file.write_text("200\n")

    def make_crafted_package() -> None:  # a shared "safe" package whose policy.pt and card.json were both edited
        import json

        import torch

        from experiments.policy_package import CARD_FILE, WEIGHTS_FILE
        from experiments.run_dir import file_digest

        package = shutil.copytree(run / "policy", work / "crafted_package")
        torch.save({"weights": Payload(marker)}, package / WEIGHTS_FILE)
        card = json.loads((package / CARD_FILE).read_text())
        card["files"][WEIGHTS_FILE] = file_digest(package / WEIGHTS_FILE)
        (package / CARD_FILE).write_text(json.dumps(card))

    def make_traffic_pickle() -> None:  # a DQN traffic run whose model file carries a payload
        import torch

        from experiments.traffic_config import TrafficRunConfig
        from experiments.traffic_training import TrafficRunDirectory

        traffic = TrafficRunDirectory(work / "traffic")
        traffic.initialise(TrafficRunConfig.load(None, {"agent": {"name": "dqn"}}))
        torch.save({"model": Payload(marker)}, traffic.final_model)

    def file_modes() -> str:  # issue row 12
        from experiments.run_dir import DIR_MODE, FILE_MODE

        modes: dict[bool, set[int]] = {False: set(), True: set()}
        for path in run.rglob("*"):
            modes[path.is_dir()].add(stat.S_IMODE(path.stat().st_mode))
        assert modes == {False: {FILE_MODE}, True: {DIR_MODE}}, modes
        return f"not an error: every file of a run is {FILE_MODE:04o}, every directory {DIR_MODE:04o} (umask 022)"

    def checkpoint_transitions() -> str:  # issue row 7
        from stable_baselines3.common.save_util import load_from_pkl

        held = {c.name: load_from_pkl(c / "replay_buffer.pkl").size() for c in (run / "checkpoints").glob("step_*")}
        assert held == {"step_000000100": 100, "step_000000200": 200}, held
        return "not an error: checkpoints step_100 and step_200 hold 100 and 200 transitions"

    def hold_lock() -> None:
        code = f"import sys; from experiments.run_dir import RunDirectory; RunDirectory({str(locked)!r}).lock(); "
        child = subprocess.Popen([sys.executable, "-c", code + "print(1, flush=True); sys.stdin.read()"], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        child.stdout.readline()
        holder.append(child)

    def corrupt_states() -> None:
        for name in RunDirectory(modified).checkpoint_names():
            (modified / "checkpoints" / name / "state.json").write_text("{")

    return [
        Case(
            "1",
            "NaN in the last observation of an episode",
            ["train", "--env", NAN_ENV, "--run-dir", work / "nan", *TINY[6:]],
        ),
        Case("2", "eval of an unsigned (foreign) SB3 model.zip", ["eval", unsigned], make_unsigned),
        Case("2", "resume from an unsigned checkpoint", ["train", "--resume", unsigned, "--timesteps", 300]),
        Case("2", "export of an unsigned model.zip", ["export", unsigned, "--out", work / "e_unsigned"]),
        Case("2", "quantisation-aware export of an unsigned model.zip",
             ["export", unsigned, "--out", work / "q_unsigned", "--qat-steps", 10]),
        Case("2", "resume when the latest checkpoint's replay buffer was replaced (a malicious pickle)",
             ["train", "--resume", modified, "--timesteps", 300], make_modified, exit=0, line="changed after it",
             check=no_code_ran),
        Case("2", "evolve --resume of a blimp run with a (malicious) checkpoint.pkl",
             ["evolve", "--resume", work / "blimp"], make_blimp_pickle, check=no_code_ran),
        Case("2", "eval of an RLlib run from elsewhere (unsigned rllib/ holding a malicious pickle)",
             ["eval", work / "rllib_run"], make_rllib_pickle, check=no_code_ran),
        Case("2", "eval of a policy package whose policy.pt holds a malicious pickle (card.json digest updated)",
             ["eval", work / "crafted_package"], make_crafted_package, check=no_code_ran),
        Case("2", "traffic-eval of a DQN run whose model file holds a malicious pickle",
             ["traffic-eval", work / "traffic"], make_traffic_pickle, check=no_code_ran),
        Case("3", "a second writer into a run directory in use", ["train", *TINY, "--run-dir", locked], hold_lock),
        Case("4", "LATEST names a deleted checkpoint (killed during a re-save): train --resume",
             ["train", "--resume", work / "latest_deleted", "--timesteps", 300], drop_latest_step, exit=0,
             line="using the newest intact checkpoint", check=finished("latest_deleted", 300, [100, 200, 300])),
        Case("4", "LATEST names a checkpoint whose state.json is corrupt: eval --checkpoint latest",
             ["eval", work / "latest_corrupt", "--checkpoint", "latest", "--episodes", 1], corrupt_latest_state,
             exit=0, line="using the newest intact checkpoint"),
        Behaviour("5", "resume --timesteps N killed, then a plain --resume",
                  "not an error: N is written to config.yaml before training; the plain --resume goes on to N",
                  "test_resume_with_more_timesteps_keeps_the_new_total; soak: run reached the exact total"),
        Behaviour("6", "evaluations.csv and TensorBoard rows after the checkpoint, on resume",
                  "not an error: dropped on resume, so each step is recorded once and wall time goes on from the "
                  "last kept row", "test_kill_while_staging_then_resume_loses_nothing; soak: evaluation steps "
                  "each recorded once"),
        Case("7", "transitions in a checkpoint at step N", checkpoint_transitions, exit=0, line="not an error",
             check=lambda: "soak: transitions lost 0"),
        Behaviour("8", "staging directories and temporary files of interrupted saves",
                  "not an error: removed by the next process that takes the run directory",
                  "test_kill_while_staging_then_resume_loses_nothing"),
        Case("9", "train into a directory whose run failed before its first checkpoint",
             ["train", *TINY, "--run-dir", no_checkpoint], make_no_checkpoint),
        Case("9", "train --resume of a run that failed before its first checkpoint",
             ["train", "--resume", no_checkpoint], exit=0, line="has no checkpoint yet",
             check=finished("no_checkpoint", 100, [100])),
        Case(
            "10",
            "config section that is a scalar (train: 5) with a flag",
            ["train", "--config", scalar, "--seed", 1, "--run-dir", new],
            lambda: scalar.write_text("train: 5\n"),
        ),
        Case("10", "negative seed", ["train", "--seed", -1, "--run-dir", new]),
        Case("10", "override with broken YAML", ["train", "--set", "actor.hidden_sizes=[3", "--run-dir", new]),
        Case(
            "10", "run directory that is a file", ["train", *TINY, "--run-dir", a_file], lambda: a_file.write_text("x")
        ),
        Case("10", "run directory below a file", ["train", *TINY, "--run-dir", a_file / "run"]),
        Case("10", "export --out onto a file", ["export", run, "--out", a_file]),
        Case("10", "export --out below a file", ["export", run, "--out", a_file / "out"]),
        Case("10", "config file that is not valid YAML", ["train", "--config", work / "broken.yaml", "--run-dir", new],
             lambda: (work / "broken.yaml").write_text("train: {timesteps: 5\n")),
        Case("10", "algo.batch_size: -1", ["train", "--set", "algo.batch_size=-1", "--run-dir", new]),
        Case("10", "algo.gamma: 1.5", ["train", "--set", "algo.gamma=1.5", "--run-dir", new]),
        Case("10", "resume with --timesteps 0", ["train", "--resume", run, "--timesteps", 0]),
        Case("10", "resume with fewer steps than the checkpoint", ["train", "--resume", run, "--timesteps", 100]),
        Case("10", "resume with --run-dir", ["train", "--resume", run, "--run-dir", new]),
        Case(
            "11",
            "module:EnvId whose module does not import",
            ["train", "--env", "no_such_module:X-v0", "--run-dir", new],
        ),
        Case("12", "modes of the files a run writes", file_modes, exit=0, line="not an error"),
        Case("13", "observations_to_q16 of NaN", lambda: observations_to_q16(np.array([0.5, np.nan]))),
        Behaviour("14", "model.predict of raw observations, before and after save/load",
                  "not an error: predict always takes raw observations; the same action in memory and loaded",
                  "test_predict_takes_raw_observations_before_and_after_load"),
        Case("held", "unknown environment (typo)", ["train", "--env", "HalfCheeta-v5", "--run-dir", new]),
        Case("held", "discrete-action environment", ["train", "--env", "CartPole-v1", "--run-dir", new]),
        Case("held", "unknown config key", ["train", "--set", "algo.buffer=5", "--run-dir", new]),
        Case("held", "value of the wrong type", ["train", "--set", "train.timesteps=many", "--run-dir", new]),
        Case("held", "unknown algorithm", ["train", "--algo", "a2c"]),
        Case("held", "missing config file", ["train", "--config", work / "missing.yaml"]),
        Case("held", "noisysan with SAC", ["train", "--actor", "noisysan", "--algo", "sac", "--run-dir", new]),
        Case("held", "RLlib with TD3", ["train", "--framework", "rllib", "--algo", "td3", "--run-dir", new]),
        Case("held", "train into a finished run", ["train", *TINY, "--run-dir", run]),
        Case("held", "every checkpoint's state.json corrupt", ["train", "--resume", modified], corrupt_states),
        Case("held", "eval of a run whose model.zip is damaged", ["eval", work / "corrupt_model"], corrupt_model),
        Case("held", "eval --trust of a run whose model.zip is damaged", ["eval", work / "corrupt_model", "--trust"]),
        Case("held", "a broken line in the middle of evaluations.csv, then train --resume",
             ["train", "--resume", work / "corrupt_csv", "--timesteps", 300], corrupt_evaluation_line, exit=0,
             line="resuming", check=finished("corrupt_csv", 300, [100, 200, 300])),
        Case("held", "a run's config.yaml that is not valid YAML", ["eval", work / "bad_run_config"], break_run_config),
        Case("held", "eval of a directory that is not a run", ["eval", work / "nowhere"]),
        Case("held", "eval --episodes 0", ["eval", run, "--episodes", 0]),
        Case("held", "unknown export format", ["export", run, "--out", work / "e", "--format", "c,onnx"]),
    ], holder  # fmt: skip


def shown(text: str, work: Path) -> str:
    """``text`` for the docs: no machine paths, no PIDs, no table-breaking bars."""
    text = text.replace(str(work), "TMP").replace(str(Path.home()), "~").replace("|", "\\|")
    return re.sub(r"process \d+", "process PID", text)


def table(work: Path) -> tuple[str, list[str]]:
    """The markdown table and the cases that did not give one error line with exit 2."""
    from experiments import cli

    assert cli.main(["train", *TINY, "--timesteps", "200", "--run-dir", str(work / "run")]) == 0
    rows, failures = [], []
    all_cases, holders = cases(work)
    try:
        for case in all_cases:
            if isinstance(case, Behaviour):
                rows.append(f"| {case.issue} | {case.what} | — | — | {case.behaviour} | {case.where} |")
                continue
            code, err, out = run_case(case)
            lines = [line for line in err.splitlines() + out.splitlines() if line.strip()]
            if case.exit == 2:
                found = [line for line in err.splitlines() if "error:" in line.lower()]
                ok = code == 2 and len(found) == 1
            else:
                found = [line for line in lines if case.line in line]
                ok = code == case.exit and bool(found)
            if not ok:
                failures.append(f"{case.what}: exit {code}, stderr {err!r}")
            checked = "—"
            if case.check is not None:
                try:
                    checked = case.check()
                except AssertionError as error:
                    failures.append(f"{case.what}: check failed: {error}")
                    checked = f"FAILED: {error}"
            message = shown(found[0] if found else (lines[-1] if lines else ""), work)
            command = (
                "Python API" if callable(case.args) else "`" + shown(" ".join(map(str, case.args[:2])), work) + " …`"
            )
            rows.append(f"| {case.issue} | {case.what} | {command} | {code} | {message} | {shown(checked, work)} |")
    finally:
        for child in holders:
            child.stdin.close()
            child.wait()
    header = "| issue row | bad input | command | exit | message | checked after |\n|---|---|---|---|---|---|\n"
    return header + "\n".join(rows) + "\n", failures


def main(argv: list[str] | None = None) -> int:
    from experiments.soak import replace_block

    parser = argparse.ArgumentParser(prog="python -m experiments.bad_input", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=Path, help="page whose bad-input block gets the table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        text, failures = table(Path(scratch))
    print(text)
    if args.docs is not None:
        replace_block(
            args.docs, "bad-input", "Command: `python -m experiments.bad_input --docs docs/reliability.md`\n\n" + text
        )
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
