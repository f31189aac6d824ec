"""A real multi-node Ray cluster on one machine: ``ray start --head`` plus ``ray start --address`` nodes,
each a separate raylet with its own CPUs, torn down afterwards.

It exists to prove and test the suite runner's scale-out (``experiments.run --ray-address``) with Ray's own
cluster processes; on a real cluster the same two ``ray start`` commands run on different hosts. Usage::

    python -m experiments.local_cluster --nodes 2 --cpus-per-node 1 -- \\
        python -m experiments.run experiments/smoke.yaml --ray-address {address}

``{address}`` in the command is replaced by the head's ``host:port``. The cluster uses Ray's token
authentication with a fresh token in a private temporary directory; the command inherits
``RAY_AUTH_MODE`` and ``RAY_AUTH_TOKEN_PATH`` so that it can join. Stopping kills only this cluster's
processes (found by that token path), never other Ray sessions on the machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

STOP_GRACE_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_executable() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.is_file() else "ray"


class LocalCluster:
    """``nodes`` Ray nodes (one head) with ``cpus_per_node`` CPUs each, on 127.0.0.1.

    Use as a context manager; :attr:`address` is what ``ray.init(address=...)`` and
    ``experiments.run --ray-address`` take, and :attr:`env` the environment a driver needs to join.
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, start_timeout_s: float = 60.0) -> None:
        if nodes < 1 or cpus_per_node < 1:
            raise ValueError(f"a cluster needs nodes >= 1 and cpus_per_node >= 1, got {nodes} and {cpus_per_node}")
        self.nodes = nodes
        self.cpus_per_node = cpus_per_node
        self.start_timeout_s = start_timeout_s
        self.port = _free_port()
        self._temp = Path(tempfile.mkdtemp(prefix="spikerl-ray-"))
        self._token = self._temp / "auth_token"
        self._processes: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus the cluster's authentication settings."""
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self._token),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def _start_node(self, head: bool) -> None:
        command = [_ray_executable(), "start", "--block", "--node-ip-address=127.0.0.1"]
        command += [f"--num-cpus={self.cpus_per_node}", "--disable-usage-stats"]
        if head:
            command += ["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self._temp}"]
        else:
            command += [f"--address={self.address}"]
        log = (self._temp / f"node{len(self._processes)}.log").open("w")
        self._processes.append(
            subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def alive_nodes(self) -> int:
        """Number of nodes the head reports alive (asked from a short-lived driver process)."""
        probe = (
            f"import ray; ray.init(address={self.address!r}, log_to_driver=False, configure_logging=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], env=self.env, capture_output=True, text=True, timeout=self.start_timeout_s
        )
        lines = result.stdout.strip().splitlines()
        return int(lines[-1]) if result.returncode == 0 and lines and lines[-1].isdigit() else 0

    def start(self) -> LocalCluster:
        self._token.write_text(secrets.token_hex(32))
        self._token.chmod(0o600)
        self._start_node(head=True)
        deadline = time.monotonic() + self.start_timeout_s
        while not (self._temp / "node0.log").read_text().count("Ray runtime started"):
            self._check_running("head node")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray head node did not start within {self.start_timeout_s:.0f} s")
            time.sleep(0.5)
        for _ in range(self.nodes - 1):
            self._start_node(head=False)
        while self.alive_nodes() < self.nodes:
            self._check_running("worker node")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.alive_nodes()} of {self.nodes} Ray nodes joined within the timeout")
            time.sleep(0.5)
        return self

    def _check_running(self, what: str) -> None:
        for index, process in enumerate(self._processes):
            if process.poll() is not None:
                log = (self._temp / f"node{index}.log").read_text()[-2000:]
                raise RuntimeError(f"Ray {what} exited with {process.returncode}:\n{log}")

    def _cluster_pids(self) -> list[int]:
        """Every process started for this cluster: Ray passes RAY_AUTH_TOKEN_PATH to all of them."""
        marker = f"RAY_AUTH_TOKEN_PATH={self._token}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:  # exited meanwhile, or not ours to read
                    continue
        return pids

    def stop(self) -> None:
        """Terminate the nodes, then kill whatever of this cluster is left; remove the temporary directory."""
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in self._processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in self._cluster_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self._processes:
            process.wait()
        self._processes.clear()
        shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.local_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2, help="Ray nodes, the head included (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=1, help="CPUs each node offers (default 1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run in the cluster ({address})")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    try:
        with LocalCluster(args.nodes, args.cpus_per_node) as cluster:
            print(f"Ray cluster: {args.nodes} nodes x {args.cpus_per_node} CPU at {cluster.address}", flush=True)
            command = [part.replace("{address}", cluster.address) for part in command]
            return subprocess.run(command, env=cluster.env).returncode
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
