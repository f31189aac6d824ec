"""A real two-node Ray cluster (``ray start --head`` + ``ray start --address``, separate raylets with one CPU
each): the smoke suite's trials land on both nodes and the aggregate is built from their run directories."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.local_cluster import LocalCluster

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_suite_trials_land_on_both_nodes(tmp_path: Path) -> None:
    suite = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    suite.update(out=str(tmp_path / "runs"), results=str(tmp_path / "results"))
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
        assert cluster.alive_nodes() == 2
        command = [sys.executable, "-m", "experiments.run", str(suite_file), "--only", "actor=mlp"]
        result = subprocess.run(
            [*command, "--ray-address", cluster.address],
            cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        token_dir = Path(cluster.env["RAY_AUTH_TOKEN_PATH"]).parent
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    nodes = dict(re.findall(r"(InvertedPendulum-v5_mlp_td3_s\d): trained on node (\w+)", result.stdout))
    assert sorted(nodes) == ["InvertedPendulum-v5_mlp_td3_s0", "InvertedPendulum-v5_mlp_td3_s1"]
    assert len(set(nodes.values())) == 2  # one CPU per node: the two concurrent trials cannot share one
    report = (tmp_path / "results" / "results.md").read_text()
    assert "| InvertedPendulum-v5 | td3 | mlp | 0,1 | 400 |" in report
    assert not token_dir.exists()  # stopped and cleaned up


def test_cluster_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="nodes >= 1"):
        LocalCluster(nodes=0)
