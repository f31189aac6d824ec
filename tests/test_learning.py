"""Learning test: ILC-SAN + TD3 (the quickstart recipe) balances InvertedPendulum-v5 within 15k steps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import train_agent

QUICKSTART = Path(__file__).resolve().parent.parent / "experiments" / "quickstart.yaml"
RETURN_BAR = 900.0  # the maximum episode return is 1000


@pytest.mark.slow
def test_ilcsan_td3_learns_inverted_pendulum(tmp_path: Path) -> None:
    run = tmp_path / "quickstart"
    code = train_agent.main(
        ["train", "--config", str(QUICKSTART), "--seed", "0", "--run-dir", str(run), "--no-progress"]
    )
    assert code == 0
    returns = [float(row["mean_return"]) for row in csv.DictReader((run / "evaluations.csv").open())]
    assert len(returns) == 6
    assert returns[0] < 200, returns  # it starts unable to balance ...
    assert max(returns) >= RETURN_BAR, returns  # ... and learns to
