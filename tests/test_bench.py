"""`make bench` helpers: the TD3 step breakdown (timed on a real SB3 model, small and quick)."""

from __future__ import annotations

import pytest
from cli_helpers import TINY_ACTOR

from agents.sb3 import TD3
from agents.sb3.td3 import ILCSANPolicy
from envs import make_vec_env
from experiments.bench import Plan, TD3Step, td3_actor_costs

TINY_PLAN = Plan(repeats=1, min_repeat_s=0.0, fill_steps=0, timed_steps=0)


def test_td3_step_splits_the_step_into_actor_and_rest():
    step = TD3Step(steps_per_second=200.0, target_forward_ms=1.0, actor_update_ms=3.0, policy_delay=2)
    assert step.step_ms == pytest.approx(5.0)
    assert step.actor_ms == pytest.approx(2.5)  # target forward every step, update every second step
    assert step.to_dict()["actor_ms"] == pytest.approx(2.5)
    assert TD3Step(100.0).actor_ms is None  # noisy actors: throughput only


def test_td3_actor_costs_time_the_trained_actor_and_report_its_firing_rates():
    env = make_vec_env("InvertedPendulum-v5", seed=0)
    model = TD3(ILCSANPolicy, env, policy_kwargs={"actor_config": TINY_ACTOR}, learning_starts=50, batch_size=16)
    model.learn(60)
    before = [p.detach().clone() for p in model.actor.parameters()]
    costs = td3_actor_costs(model, TINY_PLAN)
    assert costs["target_forward_ms"] > 0 and costs["actor_update_ms"] > 0
    assert set(costs["firing_rates"]) == {"encoder", "hidden1", "hidden2", "output"}
    assert all(0.0 <= rate <= 1.0 for rate in costs["firing_rates"].values())
    assert any(not p.equal(q) for p, q in zip(model.actor.parameters(), before))  # the update really stepped Adam
