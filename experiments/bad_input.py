"""Regenerate the bad-input table: each bad input the command line must refuse, and the one line it prints.

Usage::

    python -m experiments.bad_input [--docs docs/reliability.md]

Trains one seconds-long run in a temporary directory, then feeds every case to ``train_agent.main`` in this
process and records the exit code and the message (paths shown relative to the temporary directory). A case
fails the script (exit 1) if it does not exit 2 with exactly one ``error:`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pickle
import re
import shutil
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
    args: list[str] | Callable[[], None]  # CLI arguments, or a function expected to raise
    setup: Callable[[], None] | None = None


def run_case(case: Case) -> tuple[int, str]:
    """``(exit code, stderr)`` of the case."""
    import train_agent

    if case.setup is not None:
        case.setup()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        if callable(case.args):
            try:
                case.args()
            except ValueError as error:
                print(f"{type(error).__name__}: {error}", file=sys.stderr)
                return 2, err.getvalue()
            return 0, err.getvalue()
        try:
            code = train_agent.main([str(a) for a in case.args])
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, err.getvalue()


def cases(work: Path) -> tuple[list[Case], list[subprocess.Popen]]:
    """The cases, and the lock-holding processes that setups start (to be ended by the caller)."""
    from agents.export.quantization import observations_to_q16
    from experiments.run_dir import RunDirectory

    run = work / "run"
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

    def make_no_checkpoint() -> None:
        from experiments.config import load_config

        RunDirectory(no_checkpoint).initialise(load_config())

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
        Case(
            "2",
            "resume from a replaced (malicious) replay buffer",
            ["train", "--resume", modified, "--timesteps", 300],
            make_modified,
        ),  # fmt: skip
        Case("3", "a second writer into a run directory in use", ["train", *TINY, "--run-dir", locked], hold_lock),
        Case(
            "9",
            "train into a directory whose run failed before its first checkpoint",
            ["train", *TINY, "--run-dir", no_checkpoint],
            make_no_checkpoint,
        ),  # fmt: skip
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
        Case("13", "observations_to_q16 of NaN", lambda: observations_to_q16(np.array([0.5, np.nan]))),
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
        Case("held", "eval of a directory that is not a run", ["eval", work / "nowhere"]),
        Case("held", "eval --episodes 0", ["eval", run, "--episodes", 0]),
        Case("held", "unknown export format", ["export", run, "--out", work / "e", "--format", "c,onnx"]),
    ], holder


def shown(text: str, work: Path) -> str:
    """``text`` for the docs: no machine paths, no PIDs, no table-breaking bars."""
    text = text.replace(str(work), "TMP").replace(str(Path.home()), "~").replace("|", "\\|")
    return re.sub(r"process \d+", "process PID", text)


def table(work: Path) -> tuple[str, list[str]]:
    """The markdown table and the cases that did not give one error line with exit 2."""
    import train_agent

    assert train_agent.main(["train", *TINY, "--timesteps", "200", "--run-dir", str(work / "run")]) == 0
    rows, failures = [], []
    all_cases, holders = cases(work)
    try:
        for case in all_cases:
            code, err = run_case(case)
            lines = [line for line in err.splitlines() if line.strip()]
            errors = [line for line in lines if "error:" in line.lower()]
            if code != 2 or len(errors) != 1:
                failures.append(f"{case.what}: exit {code}, stderr {err!r}")
            message = shown(errors[0] if errors else (lines[-1] if lines else ""), work)
            command = (
                "Python API" if callable(case.args) else "`" + shown(" ".join(map(str, case.args[:2])), work) + " …`"
            )
            rows.append(f"| {case.issue} | {case.what} | {command} | {code} | {message} |")
    finally:
        for child in holders:
            child.stdin.close()
            child.wait()
    header = "| issue row | bad input | command | exit | message |\n|---|---|---|---|---|\n"
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
