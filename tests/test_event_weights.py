"""The event-driven inference path reads the weights as they are, whatever wrote them.

Each test changes the weights of a spiking actor after the event path has run once (so any cache it keeps
is warm), then checks the event path's actions against the batched path's (autograd on) on the same inputs.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest
import torch
from stable_baselines3.common.utils import polyak_update
from torch import nn

from agents.actors import ActorConfig, SpikingActor, build_actor

CONFIGS = {
    "ilcsan": ActorConfig(name="ilcsan", hidden_sizes=[32, 32]),
    "ilcsan-mean": ActorConfig(name="ilcsan", hidden_sizes=[32], readout="mean", readout_decay=0.8),
    "popsan": ActorConfig(name="popsan", hidden_sizes=[32, 32]),
}
OBS_DIM, ACT_DIM, BATCH = 7, 3, 4


def make_actor(name: str, seed: int) -> SpikingActor:
    torch.manual_seed(seed)
    actor = build_actor(OBS_DIM, ACT_DIM, CONFIGS[name])
    assert isinstance(actor, SpikingActor)
    return actor


def observations() -> torch.Tensor:
    return torch.randn(BATCH, OBS_DIM, generator=torch.Generator().manual_seed(11)) * 1.5


def event_actions(actor: SpikingActor, obs: torch.Tensor) -> torch.Tensor:
    assert not torch.is_grad_enabled() and actor._use_event_driven(obs)
    return actor(obs).clone()


def assert_event_path_matches_dense(actor: SpikingActor, obs: torch.Tensor) -> torch.Tensor:
    dense = actor(obs).detach()  # autograd on: the batched path
    with torch.no_grad():
        fast = event_actions(actor, obs)
    torch.testing.assert_close(fast, dense, rtol=1e-5, atol=1e-5)
    return fast


def event_actions_no_grad(actor: SpikingActor, obs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return event_actions(actor, obs)


def scale_data(actor: SpikingActor) -> None:
    for p in actor.parameters():
        p.data.mul_(3.0)  # CleanRL style: no version-counter bump


def edit_under_no_grad(actor: SpikingActor) -> None:
    with torch.no_grad():
        for p in actor.parameters():
            p.mul_(-1.5).add_(0.05)


def fill_masked_entries(actor: SpikingActor) -> None:
    """Writes into intra-layer entries the mode masks out: both paths must keep ignoring them."""
    assert actor.intra is not None
    actor.intra.weight.data.fill_(0.3)
    actor.intra.bias.data.fill_(-0.2)
    actor.layers[0].weight.data.mul_(2.0)


def replace_storage(actor: SpikingActor) -> None:
    for layer in actor.layers:
        layer.weight.data = torch.randn_like(layer.weight).contiguous()  # row-major, new memory
    actor.layers[-1].bias = nn.Parameter(torch.randn_like(actor.layers[-1].bias))


WRITES: dict[str, Callable[[SpikingActor], None]] = {
    "data": scale_data,
    "no-grad in-place": edit_under_no_grad,
    "replaced storage": replace_storage,
}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("write", WRITES)
def test_event_path_sees_weight_writes(name: str, write: str) -> None:
    actor = make_actor(name, seed=1)
    obs = observations()
    before = assert_event_path_matches_dense(actor, obs)
    WRITES[write](actor)
    after = assert_event_path_matches_dense(actor, obs)
    assert (after - before).abs().max() > 1e-2  # the write changed the actions


def test_event_path_ignores_masked_intra_entries() -> None:
    torch.manual_seed(2)
    actor = build_actor(OBS_DIM, ACT_DIM, ActorConfig(name="ilcsan", hidden_sizes=[32], connections="self"))
    obs = observations()
    assert_event_path_matches_dense(actor, obs)
    fill_masked_entries(actor)
    assert_event_path_matches_dense(actor, obs)


@pytest.mark.parametrize("name", CONFIGS)
def test_event_path_follows_polyak_updates(name: str) -> None:
    """SB3's ``polyak_update`` (in-place ``mul_``/``add_`` under ``no_grad``) on a target actor."""
    source, target = make_actor(name, seed=1), make_actor(name, seed=2)
    obs = observations()
    before = assert_event_path_matches_dense(target, obs)
    for _ in range(3):
        polyak_update(source.parameters(), target.parameters(), tau=0.3)
        assert_event_path_matches_dense(target, obs)
    polyak_update(source.parameters(), target.parameters(), tau=1.0)
    with torch.no_grad():
        torch.testing.assert_close(event_actions(target, obs), event_actions(source, obs))
    assert (event_actions_no_grad(target, obs) - before).abs().max() > 1e-2


def test_event_path_after_load_state_dict_assign_copy_and_pickle() -> None:
    actor, other = make_actor("ilcsan", seed=1), make_actor("ilcsan", seed=5)
    obs = observations()
    assert_event_path_matches_dense(actor, obs)
    expected = event_actions_no_grad(other, obs)
    state = {key: value.clone() for key, value in other.state_dict().items()}
    actor.load_state_dict(state, assign=True)  # replaces the parameter objects
    torch.testing.assert_close(assert_event_path_matches_dense(actor, obs), expected)
    clone, restored = copy.deepcopy(actor), pickle.loads(pickle.dumps(actor))
    scale_data(actor)  # the copies own their memory: the original's write must not reach them
    for copied in (clone, restored):
        torch.testing.assert_close(assert_event_path_matches_dense(copied, obs), expected)
    assert (assert_event_path_matches_dense(actor, obs) - expected).abs().max() > 1e-2


def test_weights_are_stored_input_major() -> None:
    """The layout the event kernels read in place; an optimizer step keeps it."""
    actor = make_actor("ilcsan", seed=3)
    optimizer = torch.optim.Adam(actor.parameters())
    actor(observations()).sum().backward()
    optimizer.step()
    for layer in actor.layers:
        assert layer.weight.t().is_contiguous() and layer.weight.grad.t().is_contiguous()
