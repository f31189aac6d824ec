"""The committed pretrained policies: they load without unpickling, still compute the actions they computed when
they were committed, and ``train_agent.py eval`` reproduces the return on their card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from experiments.policy_package import load_package, read_card

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "pretrained"
HALFCHEETAH = PRETRAINED / "HalfCheetah-v5_ilcsan_td3_100k_s0"
# 64 raw observations of the policy's own HalfCheetah-v5 episode (eval seed 12345) and the actions it gave, one
# observation at a time, when it was committed
STORED_ACTIONS = ROOT / "tests/data/pretrained_halfcheetah_actions.npz"
CARD_KEYS = {"format", "algorithm", "actor", "env", "timesteps", "seed", "source", "git_commit", "evaluation", "files"}


@pytest.mark.parametrize("package", sorted(p for p in PRETRAINED.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_every_pretrained_policy_has_a_complete_card(package: Path) -> None:
    card = read_card(package)  # every listed file present with its SHA-256
    assert set(card) == CARD_KEYS
    assert (
        package.name
        == f"{card['env']}_{card['actor']}_{card['algorithm']}_{card['timesteps'] // 1000}k_s{card['seed']}"
    )
    assert set(card["files"]) == {"config.yaml", "policy.pt", "normalization.npz"}
    assert len(card["git_commit"]) == 40 and card["evaluation"]["episodes"] >= 10
    assert not list(package.glob("*.zip")) and not list(package.glob("*.pkl"))  # nothing that unpickles


def test_pretrained_policy_reproduces_its_stored_actions() -> None:
    model = load_package(HALFCHEETAH)
    stored = np.load(STORED_ACTIONS)
    observations, expected = stored["observations"], stored["actions"]
    single = np.concatenate([model.predict(obs[None], deterministic=True)[0] for obs in observations])
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-5)
    batch, _ = model.predict(observations, deterministic=True)  # the batched (dense) path agrees
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-5)
    assert np.abs(expected).max() > 0.5  # a trained policy, not a zero output


def test_eval_reproduces_the_cards_return(capsys) -> None:
    evaluation = json.loads((HALFCHEETAH / "card.json").read_text())["evaluation"]
    args = ("--episodes", evaluation["episodes"], "--seed", evaluation["seed"])
    assert run_cli("eval", HALFCHEETAH, *args) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "return:" in line)
    mean = float(line.split("return:")[1].split("±")[0])
    assert abs(mean - evaluation["mean_return"]) <= evaluation["std_return"]
    assert not (HALFCHEETAH / "eval.json").exists()  # eval leaves a shipped package as it was
