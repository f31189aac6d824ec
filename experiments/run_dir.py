"""A run directory: resolved config, metadata, evaluations, TensorBoard logs and atomic checkpoints.

Layout::

    RUN_DIR/
      .lock                  held (``flock``) by the one process writing the run; holds its PID
      config.yaml            full resolved config
      metadata.json          seed, command line, package versions, git commit, start time
      evaluations.csv        one row per periodic evaluation
      tensorboard/           TensorBoard event files
      checkpoints/step_000010000/{model.zip, replay_buffer.pkl, state.json, signature.json}  (rllib: rllib/)
      checkpoints/LATEST     name of the newest complete checkpoint
      model.zip              final model, SB3's format (observation statistics inside)
      rllib/                 final RLlib algorithm checkpoint (framework rllib, instead of model.zip)
      signature.json         signs model.zip or every file below rllib/ (see below)
      policy/                final policy in the pickle-free package format (experiments.policy_package)

Crash safety: a checkpoint is written into a staging directory and renamed into place; an existing checkpoint
of the same step is first renamed aside and deleted only after ``LATEST`` names the new one, so ``LATEST``
never names a missing or partial checkpoint that is not recovered. A writer takes the lock, then removes
what interrupted saves left (staging directories, temporary files) and puts renamed-aside checkpoints back.
Readers fall back to the newest intact checkpoint when ``LATEST`` is unusable and say so.

Trust: SB3's ``model.zip``, replay buffers and RLlib checkpoints hold pickles, which can run code when loaded.
This module signs the pickles it writes with an HMAC key private to the user (``~/.config/spikerl/trust.key``, or the
file named by ``SPIKERL_TRUST_KEY``) and :func:`require_trusted` loads only files signed with that key or
inside a directory the user marked trusted (``--trust``).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import yaml

from envs.errors import UserError
from experiments.config import ConfigError, RunConfig

PACKAGES = ("torch", "stable-baselines3", "ray", "gymnasium", "mujoco", "numpy", "numba")
EVALUATION_FIELDS = ("timesteps", "mean_return", "std_return", "mean_length", "sops_per_action", "wall_time_s")


FAULT_ENV = "SPIKERL_FAULT"  # test hook: "POINT[:N]" kills this process (SIGKILL) the N-th time it reaches POINT
TRACE_ENV = "SPIKERL_TRACE"  # soak hook: file to which checkpoint writes append "begin STEP" / "end STEP" lines
TRUST_KEY_ENV = "SPIKERL_TRUST_KEY"
SIGNATURE_FILE = "signature.json"
LOCK_FILE = ".lock"
ASIDE_PREFIX = ".replaced."
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() gives a new file: every file a run writes gets it (0644 under umask 022)
DIR_MODE = 0o777 & ~_UMASK


class CheckpointError(UserError, RuntimeError):
    """A checkpoint or run file is missing, unreadable or in use."""


class UntrustedFileError(UserError):
    """A pickle that is neither signed with the user's key nor inside a directory marked trusted."""


_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test hook: if ``SPIKERL_FAULT`` is ``name`` or ``name:N``, SIGKILL this process the N-th time (default 1st)
    execution reaches this point. Crash tests use it to kill a real run at a chosen step of a checkpoint write."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def trace(event: str) -> None:
    """Append ``event`` to the file named by ``SPIKERL_TRACE`` (one ``write``: it survives a SIGKILL right after)."""
    path = os.environ.get(TRACE_ENV)
    if path:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        try:
            os.write(handle, f"{event}\n".encode())
        finally:
            os.close(handle)


def make_directory(path: Path, what: str) -> Path:
    """Create directory ``path`` (and parents); a path that is, or lies below, a file is a :class:`UserError`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise ConfigError(f"{what} {path} cannot be created: {err.strerror} ({err.filename})") from err
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be created: {err}") from err
    if not path.is_dir():
        raise ConfigError(f"{what} {path} is not a directory")
    return path


def replace_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` with ``write(temporary_path)`` next to it, then rename it into place (mode :data:`FILE_MODE`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, FILE_MODE)
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (mode :data:`FILE_MODE`)."""
    replace_atomic(path, lambda temporary: temporary.write_text(text))


# ---- trust: signatures of the pickles this code writes ------------------------------------------------
_trusted_roots: list[Path] = []


def trust_key_file() -> Path:
    return Path(os.environ.get(TRUST_KEY_ENV) or Path.home() / ".config" / "spikerl" / "trust.key")


def _trust_key() -> bytes:
    """The user's signing key (32 random bytes, mode 0600), created on first use."""
    path = trust_key_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(handle, "wb") as out:
                out.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 16:
        raise UntrustedFileError(f"trust key {path} is too short ({len(key)} bytes); delete it to make a new one")
    return key


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files_below(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != SIGNATURE_FILE)


def _mac(digests: dict[str, str]) -> str:
    return hmac.new(_trust_key(), json.dumps(digests, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def sign_files(directory: Path, names: list[str] | None = None) -> None:
    """Write ``directory/signature.json``: SHA-256 of ``names`` (default: every file below; a name that is a
    directory stands for every file below it, e.g. an RLlib checkpoint) and an HMAC over them."""
    paths = _files_below(directory) if names is None else []
    for name in names or []:
        path = directory / name
        paths.extend(_files_below(path) if path.is_dir() else [path])
    digests = {p.relative_to(directory).as_posix(): file_digest(p) for p in paths}
    write_atomic(directory / SIGNATURE_FILE, json.dumps({"files": digests, "hmac": _mac(digests)}, indent=2) + "\n")


def trust_directory(path: Path) -> None:
    """Mark every file below ``path`` trusted for this process (the user's ``--trust``)."""
    _trusted_roots.append(Path(path).resolve())


def require_trusted(path: Path) -> None:
    """Allow unpickling ``path`` (a file or a directory of files) only if it lies in a directory marked trusted
    or the ``signature.json`` beside it was made with the user's key and matches its bytes.

    Raises :class:`UntrustedFileError` (not signed by this user) or :class:`CheckpointError` (changed since signed).
    """
    resolved = Path(path).resolve()
    if any(resolved.is_relative_to(root) for root in _trusted_roots):
        return
    signature = path.parent / SIGNATURE_FILE
    refusal = (
        f"refusing to load {path}: it is a pickle, which can run code when loaded, and it is not signed with "
        f"your key ({trust_key_file()}); pass --trust only if you trust where it came from"
    )
    try:
        data = json.loads(signature.read_text())
        digests, mac = dict(data["files"]), str(data["hmac"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UntrustedFileError(refusal) from err
    if not hmac.compare_digest(mac, _mac(digests)):
        raise UntrustedFileError(refusal)
    names = [p.relative_to(path.parent).as_posix() for p in (_files_below(path) if path.is_dir() else [path])]
    if any(name not in digests for name in names):
        raise UntrustedFileError(refusal)
    check_digests(path.parent, {name: digests[name] for name in names})


def check_digests(directory: Path, digests: dict[str, str]) -> None:
    """Raise :class:`CheckpointError` naming the first file of ``digests`` (names relative to ``directory``) that
    is missing or whose SHA-256 differs: a file damaged or changed after it was written."""
    for name, digest in digests.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing (listed in {directory / SIGNATURE_FILE})")
        if file_digest(path) != digest:
            raise CheckpointError(f"{path} changed after it was written (its digest differs)")


def wait_past_event_files(log_dir: Path) -> None:
    """Wait until the clock is past the second in which the newest TensorBoard event file of ``log_dir`` was
    created. TensorBoard reads a log's event files in name order, and a name starts with its creation time in
    whole seconds: a writer created afterwards (a resume's ``purge_step`` marker and its points) sorts after
    every older file."""
    stamps = []
    for event_file in Path(log_dir).glob("events.out.tfevents.*"):
        stamp = event_file.name.split(".")[3]
        if stamp.isdigit():
            stamps.append(int(stamp))
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.05)


def git_commit() -> str:
    """Commit of the source tree (with ``-dirty`` if modified), or ``unknown`` outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
        return commit + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class Checkpoint:
    path: Path
    timesteps: int

    @property
    def model(self) -> Path:
        return self.path / "model.zip"

    @property
    def replay_buffer(self) -> Path:
        return self.path / "replay_buffer.pkl"

    @property
    def rllib(self) -> Path:
        """RLlib algorithm checkpoint directory (framework ``rllib``)."""
        return self.path / "rllib"


_held_locks: dict[Path, int] = {}  # resolved run path -> descriptor of its locked .lock file
_Run = TypeVar("_Run", bound="BaseRunDirectory")


class BaseRunDirectory:
    """What every run directory has (SB3/RLlib, traffic and evolution runs): ``config.yaml``, ``metadata.json``,
    ``tensorboard/`` and the one-writer lock. Subclasses name their config type (:attr:`parse_config`) and add
    their own files and checkpoint format."""

    parse_config: Callable[[Any], Any]  # config dataclass from the mapping in config.yaml
    config_kind = "run"  # in errors: "unreadable <kind> config"
    packages = PACKAGES  # whose versions metadata.json records

    def __init__(self, path: str | Path, command: str | None = None) -> None:
        self.path = Path(path)
        self.command = command or " ".join(sys.argv)  # what metadata.json records as the run's command
        self._warnings: set[str] = set()  # fallback warnings already printed (a resume looks LATEST up twice)

    config_file = property(lambda self: self.path / "config.yaml")
    metadata_file = property(lambda self: self.path / "metadata.json")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")

    def _save_dirs(self) -> tuple[Path, ...]:
        """Directories in which an interrupted save can leave staging or temporary files."""
        return (self.path,)

    # ---- one writer at a time ----------------------------------------------------------------------
    def lock(self) -> None:
        """Take the run's exclusive lock (held until :meth:`unlock` or the process ends), then clean up
        after interrupted saves. A second process gets a :class:`CheckpointError` naming the holder's PID.
        Re-entrant within a process."""
        key = make_directory(self.path, "run directory").resolve()
        if key in _held_locks:
            return
        lock_file = self.path / LOCK_FILE
        handle = os.open(lock_file, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise CheckpointError(
                f"{self.path} is in use by process {holder} (lock {lock_file}); "
                "wait for it to finish or use another run directory"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        _held_locks[key] = handle
        self.clean_interrupted()

    def unlock(self) -> None:
        handle = _held_locks.pop(self.path.resolve(), None)
        if handle is not None:
            os.close(handle)  # closing the descriptor releases the flock

    @contextmanager
    def locked(self: _Run) -> Iterator[_Run]:
        """``with run.locked():`` hold the lock for the block (kept if it was already held)."""
        held = self.path.resolve() in _held_locks if self.path.exists() else False
        self.lock()
        try:
            yield self
        finally:
            if not held:
                self.unlock()

    def clean_interrupted(self) -> list[str]:
        """Remove staging directories and temporary files of interrupted saves; put a checkpoint that was renamed
        aside for a re-save back if the re-save did not land. Returns what was removed or restored."""
        cleaned = []
        for directory in self._save_dirs():
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                name = entry.name
                if name.startswith(ASIDE_PREFIX):
                    original = directory / name[len(ASIDE_PREFIX) :]
                    if original.exists():
                        shutil.rmtree(entry)
                    else:
                        os.replace(entry, original)
                elif name.startswith(".") and name != LOCK_FILE:  # .step_*, .LATEST.*, .config.yaml.*, ...
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                else:
                    continue
                cleaned.append(name)
        return cleaned

    @contextmanager
    def claim_new_run(self: _Run) -> Iterator[_Run]:
        """``with run.claim_new_run():`` write a new run here, holding the lock for the block. Raises
        :class:`ConfigError` if the directory already holds a run; the check is made under the lock, so two
        commands cannot both find the directory empty. If the block fails before anything is written, a directory
        this call created is removed again."""
        created = not self.path.exists()
        with self.locked():
            if self.config_file.exists():
                raise ConfigError(f"{self.path} already holds a run; use --resume {self.path} or another --run-dir")
            try:
                yield self
            except BaseException:
                if created and [entry.name for entry in self.path.iterdir()] == [LOCK_FILE]:
                    (self.path / LOCK_FILE).unlink()
                    self.path.rmdir()
                raise

    def initialise(self, config: Any, **extra: Any) -> None:
        """Create the directory and write the resolved config and the metadata (with ``extra`` entries)."""
        make_directory(self.path, "run directory")
        self.save_config(config)
        write_atomic(self.metadata_file, json.dumps({**self.metadata(config), **extra}, indent=2) + "\n")

    def recorded_commit(self) -> str | None:
        """The git commit ``metadata.json`` records (the code that trained the run); ``None`` if unreadable."""
        try:
            commit = json.loads(self.metadata_file.read_text()).get("git_commit")
        except (OSError, ValueError, AttributeError):
            return None
        return commit if isinstance(commit, str) else None

    def metadata(self, config: Any) -> dict[str, Any]:
        """What ``metadata.json`` of a new run records (subclasses add the config's seeds)."""
        return {
            "command": self.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "git_commit": git_commit(),
            "versions": package_versions(self.packages),
        }

    def save_config(self, config: Any) -> None:
        """Write the resolved config (e.g. a resume's new ``train.timesteps``, so a later resume keeps it)."""
        write_atomic(self.config_file, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def load_config(self) -> Any:
        """The run's config (:attr:`parse_config`); raises :class:`CheckpointError` if it is missing or invalid."""
        if not self.config_file.is_file():
            raise CheckpointError(f"{self.path} is not a run directory: {self.config_file.name} is missing")
        try:
            return self.parse_config(yaml.safe_load(self.config_file.read_text()))
        except (yaml.YAMLError, ConfigError) as err:
            raise CheckpointError(f"{self.config_file}: unreadable {self.config_kind} config: {err}") from err


class RunDirectory(BaseRunDirectory):
    """Files of one training run (SB3 or RLlib; see the module docstring)."""

    parse_config = staticmethod(RunConfig.from_dict)

    evaluations_file = property(lambda self: self.path / "evaluations.csv")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    final_model = property(lambda self: self.path / "model.zip")
    final_policy = property(lambda self: self.path / "policy")  # pickle-free package of the final policy
    final_rllib = property(lambda self: self.path / "rllib")  # final RLlib algorithm checkpoint
    done_file = property(lambda self: self.path / "DONE")

    def _save_dirs(self) -> tuple[Path, ...]:
        return (self.path, self.checkpoints_dir)

    def metadata(self, config: RunConfig) -> dict[str, Any]:
        return {"seed": config.train.seed, **super().metadata(config)}

    def finished_steps(self) -> int | None:
        """Steps recorded in ``DONE`` (training finished), or None."""
        try:
            return int(self.done_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return None

    def discard_progress(self) -> None:
        """Forget a run that never reached a checkpoint: evaluations, TensorBoard logs and final files."""
        for path in (self.evaluations_file, self.done_file, self.final_model, self.path / SIGNATURE_FILE):
            path.unlink(missing_ok=True)
        for path in (self.tensorboard_dir, self.checkpoints_dir, self.final_policy):
            shutil.rmtree(path, ignore_errors=True)

    # ---- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, model: Any, timesteps: int, keep: int, state: dict[str, Any]) -> Checkpoint:
        """Write an SB3 model (+ replay buffer if any) atomically as ``step_<timesteps>``; prune old ones."""

        def write(staging: Path) -> None:
            model.save(staging / "model.zip")
            if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
                model.save_replay_buffer(staging / "replay_buffer.pkl")

        return self.save_checkpoint_with(write, timesteps, keep, state)

    def save_checkpoint_with(
        self, write: Callable[[Path], None], timesteps: int, keep: int, state: dict[str, Any]
    ) -> Checkpoint:
        """Checkpoint ``step_<timesteps>`` whose files ``write(staging_dir)`` creates, signed and made visible
        atomically. Fault points (see :func:`fault_point`): ``checkpoint_staged`` (complete, not yet visible),
        ``checkpoint_aside`` (an older copy of the step renamed aside), ``checkpoint_placed`` (visible, LATEST not
        yet updated), ``checkpoint_latest`` (LATEST updated, old copies not yet removed)."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        trace(f"begin {timesteps}")
        name = f"step_{timesteps:09d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.checkpoints_dir))
        os.chmod(staging, DIR_MODE)
        write(staging)
        write_atomic(staging / "state.json", json.dumps({"timesteps": timesteps, **state}, indent=2) + "\n")
        sign_files(staging)
        fault_point("checkpoint_staged")
        target = self.checkpoints_dir / name
        aside = self.checkpoints_dir / f"{ASIDE_PREFIX}{name}"
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(target, aside)
            fault_point("checkpoint_aside")
        os.replace(staging, target)
        fault_point("checkpoint_placed")
        write_atomic(self.checkpoints_dir / "LATEST", name + "\n")
        fault_point("checkpoint_latest")
        shutil.rmtree(aside, ignore_errors=True)
        for old in self.checkpoint_names()[:-keep]:  # renamed first: a kill never leaves a half-deleted step_*
            doomed = self.checkpoints_dir / f".pruned.{old}"
            os.replace(self.checkpoints_dir / old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        trace(f"end {timesteps}")
        return Checkpoint(target, timesteps)

    def checkpoint_names(self) -> list[str]:
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p.name for p in self.checkpoints_dir.iterdir() if p.is_dir() and p.name.startswith("step_"))

    def has_checkpoint(self) -> bool:
        return (self.checkpoints_dir / "LATEST").is_file() or bool(self.checkpoint_names())

    def _checkpoint(self, path: Path) -> Checkpoint:
        state_file = path / "state.json"
        try:
            state = json.loads(state_file.read_text())
            timesteps = int(state["timesteps"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"checkpoint state {state_file} is missing or corrupt: {err}") from err
        checkpoint = Checkpoint(path, timesteps)
        if not checkpoint.model.is_file() and not checkpoint.rllib.is_dir():
            raise CheckpointError(f"checkpoint model {checkpoint.model} is missing")
        try:  # the digests recorded when it was written (a checkpoint from elsewhere may have none)
            digests = dict(json.loads((path / SIGNATURE_FILE).read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            digests = {}
        check_digests(path, digests)
        return checkpoint

    def latest_checkpoint(self) -> Checkpoint:
        """The checkpoint ``LATEST`` names or, if that one is unusable, the newest intact one (with a warning on
        stderr, once per :class:`RunDirectory`); raises :class:`CheckpointError` naming what is missing when none
        is usable."""
        pointer = self.checkpoints_dir / "LATEST"
        names = self.checkpoint_names()
        if not pointer.is_file() and not names:
            raise CheckpointError(f"no checkpoint to resume from: {pointer} does not exist")
        try:
            if not pointer.is_file():
                raise CheckpointError(f"{pointer} does not exist")
            return self._checkpoint(self.checkpoints_dir / pointer.read_text().strip())
        except CheckpointError as err:
            problem = err
        for name in reversed(names):
            try:
                checkpoint = self._checkpoint(self.checkpoints_dir / name)
            except CheckpointError:
                continue
            warning = f"warning: {problem}; using the newest intact checkpoint, {name}"
            if warning not in self._warnings:
                self._warnings.add(warning)
                print(warning, file=sys.stderr)
            return checkpoint
        raise problem

    # ---- evaluations -------------------------------------------------------------------------------
    def evaluation_rows(self) -> list[dict[str, str]]:
        """Complete rows of ``evaluations.csv`` (a row cut short by a crash is skipped)."""
        if not self.evaluations_file.is_file():
            return []
        with self.evaluations_file.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        complete = []
        for row in rows:
            try:
                int(row["timesteps"]), float(row["wall_time_s"])
            except (KeyError, TypeError, ValueError):
                continue
            complete.append(row)
        return complete

    def truncate_evaluations(self, timesteps: int) -> int:
        """Drop the rows after step ``timesteps`` (a resume from that checkpoint redoes them); returns how many."""
        rows = self.evaluation_rows()
        kept = [row for row in rows if int(row["timesteps"]) <= timesteps]
        if not self.evaluations_file.is_file() or (len(kept) == len(rows) and self._rows_match_file(rows)):
            return 0

        def write(path: Path) -> None:
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=EVALUATION_FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)

        replace_atomic(self.evaluations_file, write)
        return len(rows) - len(kept)

    def _rows_match_file(self, rows: list[dict[str, str]]) -> bool:
        with self.evaluations_file.open(newline="") as handle:
            return sum(1 for _ in csv.reader(handle)) == len(rows) + 1

    def append_evaluation(self, row: dict[str, Any]) -> None:
        """Append one row (keys :data:`EVALUATION_FIELDS`) to ``evaluations.csv``, writing the header first."""
        new_file = not self.evaluations_file.exists()
        with self.evaluations_file.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVALUATION_FIELDS)
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def recorded_wall_time(self) -> float:
        """Wall time of the last evaluation already on disk, so a resumed run keeps counting."""
        rows = self.evaluation_rows()
        return float(rows[-1]["wall_time_s"]) if rows else 0.0
