"""Actor networks: shapes, gradients, the ILC-SAN/PopSAN identity, activity and SOP accounting."""

from __future__ import annotations

import pytest
import torch

from agents.activity import ENERGY_PER_AC_PJ, ENERGY_PER_MAC_PJ, ActivityReport
from agents.actors import ILCSAN, ActorConfig, MLPActor, PopSAN, build_actor


@pytest.mark.parametrize("name", ["mlp", "popsan", "ilcsan"])
def test_actor_shapes_and_gradients(name: str) -> None:
    """Output ``[B, M]``; each row depends on its own observation only, in value and in gradient (no state
    leaks across the batch or across calls); every parameter receives a gradient."""
    torch.manual_seed(0)
    actor = build_actor(17, 6, ActorConfig(name=name))
    obs = torch.randn(8, 17, requires_grad=True)
    out = actor(obs)
    assert out.shape == (8, 6) and torch.isfinite(out).all()
    assert out.std(0).min() > 0  # different observations give different actions
    torch.testing.assert_close(actor(obs).detach(), out.detach(), rtol=0, atol=0)  # a second call: same actions
    with torch.no_grad():  # alone = in the batch (also through the event-driven inference path)
        torch.testing.assert_close(actor(obs[3:4]), out[3:4].detach(), rtol=1e-5, atol=1e-5)
    out[2].sum().backward()
    assert obs.grad is not None and obs.grad[2].abs().sum() > 0
    assert torch.count_nonzero(obs.grad[[0, 1, 3, 4, 5, 6, 7]]) == 0
    actor.zero_grad()
    actor(obs).sum().backward()
    grads = {n: p.grad for n, p in actor.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.isfinite(g).all() for g in grads.values())
    if name != "mlp":
        assert grads["encoder.mean"].abs().sum() > 0 and grads["encoder.std"].abs().sum() > 0
    if name == "ilcsan":
        assert grads["intra.weight"].abs().sum() > 0


@pytest.mark.parametrize("name", ["popsan", "ilcsan"])
def test_zero_readout_weights_give_the_bias(name: str) -> None:
    """With zero readout weights the action is the readout bias alone: PopSAN's decoder gives ``b``, ILC-SAN's
    integrating readout (decay 1, ``last``) gives ``T b``, whatever the observation."""
    torch.manual_seed(2)
    actor = build_actor(17, 6, ActorConfig(name=name, timesteps=5))
    synapses = actor.decoder if name == "popsan" else actor.readout_synapses
    with torch.no_grad():
        synapses.weight.zero_()
        synapses.bias.copy_(torch.linspace(-0.3, 0.2, 6))
        expected = synapses.bias * (1 if name == "popsan" else 5)
        for batch in (1, 64):  # the event-driven (small batch) and the batched path
            torch.testing.assert_close(actor(torch.randn(batch, 17)), expected.expand(batch, 6))


def test_paper_parameter_counts() -> None:
    """PopSAN for HalfCheetah has 125,394 parameters (docs/methods.md, PopSAN); ILC-SAN adds 6*10*10 + 60 = 660."""
    popsan = build_actor(17, 6, ActorConfig(name="popsan"))
    ilcsan = build_actor(17, 6, ActorConfig(name="ilcsan"))
    assert sum(p.numel() for p in popsan.parameters()) == 125_394
    assert sum(p.numel() for p in ilcsan.parameters()) == 125_394 + 660


def test_ilcsan_without_connections_is_scaled_popsan() -> None:
    """With no intra-layer connections, decay 1 and the ``last`` readout, V_T = sum_t (w s_t + b) = T (w r + b):
    ILC-SAN's readout equals T times PopSAN's rate decoder with the same weights (docs/methods.md, ILC-SAN)."""
    torch.manual_seed(1)
    config = ActorConfig(name="ilcsan", connections="none", timesteps=5)
    ilc = ILCSAN(11, 3, config)
    pop = PopSAN(11, 3, ActorConfig(name="popsan", timesteps=5))
    shared = {k: v for k, v in ilc.state_dict().items() if not k.startswith(("intra", "readout_synapses"))}
    pop.load_state_dict(
        {**shared, "decoder.weight": ilc.readout_synapses.weight, "decoder.bias": ilc.readout_synapses.bias}
    )
    obs = torch.randn(32, 11)
    torch.testing.assert_close(ilc(obs), 5 * pop(obs), rtol=1e-5, atol=1e-5)


def test_activity_report_counts_synaptic_operations() -> None:
    torch.manual_seed(2)
    actor = build_actor(4, 2, ActorConfig(name="ilcsan", hidden_sizes=[8, 6], encoder_pop=3, decoder_pop=5))
    actor(torch.randn(10, 4))
    report = actor.activity()
    spikes = actor._last_spikes
    per_action = [float(s.sum()) / 10 for s in spikes]  # spikes per action in each layer
    # encoder -> 8 hidden, hidden1 -> 6, hidden2 -> 10 output neurons, output -> 5 intra (full) + 1 readout
    expected = per_action[0] * 8 + per_action[1] * 6 + per_action[2] * 10 + per_action[3] * (5 + 1)
    assert report.sops == pytest.approx(expected)
    assert set(report.firing_rates) == {"encoder", "hidden1", "hidden2", "output"}
    assert report.firing_rates["output"] == pytest.approx(float(spikes[3].mean()))
    assert report.macs == 4 * 3  # only the Gaussian receptive fields are real-valued
    assert report.energy_pj == pytest.approx(expected * ENERGY_PER_AC_PJ + 12 * ENERGY_PER_MAC_PJ)


def test_mlp_macs_and_activity_before_forward() -> None:
    assert MLPActor(17, 6, [256, 256]).activity().macs == 17 * 256 + 256 * 256 + 256 * 6
    with pytest.raises(RuntimeError, match="forward pass first"):
        build_actor(3, 1, ActorConfig(name="popsan")).activity()
    assert ActivityReport(sops=10, macs=1).energy_pj == pytest.approx(10 * 0.9 + 4.6)


def test_bad_observation_shape_and_config() -> None:
    actor = build_actor(5, 2, ActorConfig(name="ilcsan"))
    with pytest.raises(ValueError, match=r"\[B, 5\]"):
        actor(torch.randn(3, 4))
    with pytest.raises(ValueError, match="valid: mlp, popsan, ilcsan"):
        ActorConfig(name="lstm")
    with pytest.raises(ValueError, match="connections"):
        ActorConfig(connections="everything")


@pytest.mark.parametrize(
    "config",
    [
        ActorConfig(name="popsan"),
        ActorConfig(name="ilcsan"),
        ActorConfig(name="ilcsan", readout="mean", readout_decay=0.8),
        ActorConfig(name="ilcsan", readout="max-abs", connections="lateral"),
        ActorConfig(name="ilcsan", connections="bias", hidden_sizes=[64]),
        ActorConfig(name="ilcsan", connections="none"),
    ],
)
def test_event_driven_inference_matches_batched_path(config: ActorConfig) -> None:
    """Small-batch inference takes the compiled event-driven path; it computes the same network."""
    torch.manual_seed(3)
    actor = build_actor(9, 3, config)
    obs = torch.randn(4, 9) * 1.5
    batched = actor(obs).detach()  # grad enabled: batched GEMM path
    batched_spikes = [s.clone() for s in actor._last_spikes]
    with torch.no_grad():
        fast = actor(obs)
    for a, b in zip(actor._last_spikes, batched_spikes):
        assert torch.equal(torch.as_tensor(a), b)
    torch.testing.assert_close(fast, batched, rtol=1e-5, atol=1e-5)
    assert actor.activity().sops > 0


def test_event_driven_cache_follows_parameter_updates() -> None:
    torch.manual_seed(4)
    actor = build_actor(5, 2, ActorConfig(name="ilcsan", hidden_sizes=[16]))
    obs = torch.randn(1, 5)
    with torch.no_grad():
        before = actor(obs).clone()
    optimizer = torch.optim.SGD(actor.parameters(), lr=1.0)
    (actor(torch.randn(8, 5)) ** 2).sum().backward()
    optimizer.step()
    with torch.no_grad():
        after = actor(obs)
    torch.testing.assert_close(after, actor(obs).detach(), rtol=1e-5, atol=1e-5)
    assert not torch.equal(before, after)
