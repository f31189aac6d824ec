"""Blimp controllers: PID values, PID closed loop on the paper PD protocol, SNN hand-computed trace, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.blimp.controllers import SNNController, SummedController, fly
from agents.blimp.datasets import i_target, pd_target
from agents.blimp.pid import PID, PIDGains
from agents.blimp.snn import SNNArchitecture, SNNPopulation, imitation_loss
from envs.blimp import BlimpAltitudeEnv
from experiments.blimp_metrics import flight_metrics
from neurons.threshold_adaptation import adapt_threshold


def test_pid_hand_computed_values() -> None:
    pid = PID()  # Kp 9, Ki 0.75, Kd 14, T 0.1
    assert pid(0.5) == pytest.approx(9 * 0.5 + 0.75 * 0.05)  # no derivative kick on the first tick
    assert pid(0.4) == -10.0  # 3.6 + 0.0675 - 14 = -10.3325, clipped
    pid = PID(derivative="averaged")
    pid(0.5), pid(0.4)
    assert pid.derivative(0.1) == pytest.approx((0.1 - 0.5) / 0.2)
    pid = PID(PIDGains(kp=0.0, ki=1.0, kd=0.0))
    for _ in range(200):
        out = pid(1.0)
    assert pid.integral == 10.0 and out == 10.0  # integral clamped at ±10
    with pytest.raises(ValueError, match="valid: single, averaged"):
        PID(derivative="central")


def test_imitation_targets() -> None:
    errors = np.array([0.0, 0.1, 0.2, 0.2, 0.2])
    # two-sample averaged derivative: kicks (|Kd D| > 10) are divided by 10
    assert pd_target(errors, 9.0, 14.0) == pytest.approx([0.0, 0.9, 1.8 + 1.4, 1.8 + 7.0, 1.8])
    big = np.array([0.0, 0.0, 1.0])
    assert pd_target(big, 0.0, 14.0)[2] == pytest.approx(14 * 5 / 10)
    assert i_target(np.full(3, 2.0), 0.75) == pytest.approx([0.15, 0.3, 0.45])


def test_pid_settles_on_the_paper_pd_protocol() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd")
    for seed, step in ((0, 0.5), (1, -1.0)):
        metrics = flight_metrics(fly(env, PID(), seed, {"step": step}))
        assert metrics["sse_cm"] < 5.0  # mean |e| over the last 10 s of the hold
        overshoot = metrics["overshoot_up_cm"] if step > 0 else metrics["overshoot_down_cm"]
        assert 1.0 < overshoot < 35.0
        assert metrics["limit_cycle_p2p_cm"] < 20.0 and metrics["flips"] > 0


def test_pid_removes_the_negative_buoyancy_offset_that_pd_leaves() -> None:
    env = BlimpAltitudeEnv(profile="paper-pd", buoyancy="negative")
    pd = flight_metrics(fly(env, PID(PIDGains(ki=0.0)), 0, {"step": 0.0}))
    pid = flight_metrics(fly(env, PID(), 0, {"step": 0.0}))
    assert pd["sse_signed_cm"] > 15.0  # hover needs u ≈ 3: PD sits ≈ u/Kp below the set-point
    assert abs(pid["sse_signed_cm"]) < 3.0


def hand_network() -> tuple[SNNArchitecture, np.ndarray]:
    """One encoding pair -> one hidden pair (identity block) -> readout (+1, -1), all decays 0.5."""
    arch = SNNArchitecture(hidden=2, variant="lif")
    params = {
        "enc_weight": [1.0],
        "enc_bias": [0.5],
        "enc_mem_decay": [0.5, 0.5],
        "enc_threshold": [1.0, 1.0],
        "hid_weight": [[[1.0, 0.0], [0.0, 1.0]]],
        "hid_syn_decay": [0.5, 0.5],
        "hid_mem_decay": [0.5, 0.5],
        "hid_threshold": [1.2, 1.2],
        "dec_weight": [1.0, -1.0],
        "dec_decay": [0.5],
    }
    return arch, arch.encode({k: np.array(v) for k, v in params.items()})


def test_snn_forward_matches_the_hand_computed_trace() -> None:
    """Encoding currents (e + 0.5, -e + 0.5); voltages by hand (soft reset subtracts ϑ after a spike):
    enc+ 1.5, 1.25, 1.125, -0.9375 -> spikes 1,1,1,0; enc- -0.5, -0.75, -0.875, 1.0625 -> 0,0,0,1;
    hid+ current 1, 1.5, 1.75, 0.875; voltage 1, 2, 1.55, 0.45 -> 0,1,1,0; hid- voltage 0,0,0,1 (< 1.2) -> 0;
    readout y = 0.5 y + 0.5 (s+ - s-) -> 0, 0.5, 0.75, 0.375."""
    arch, genome = hand_network()
    network = SNNPopulation(arch, genome[None, :])
    out = network.run(np.array([1.0, 1.0, 1.0, -1.0]))
    assert out[:, 0].tolist() == pytest.approx([0.0, 0.5, 0.75, 0.375], abs=1e-12)
    assert network.spike_counts["encoding"].item() == 4 and network.spike_counts["hidden"].item() == 2
    assert network.synaptic_operations().item() == 4 * 2 + 2 * 1
    controller = SNNController(arch, genome)  # the step-wise closed-loop path gives the same trace
    assert [controller(e) for e in (1.0, 1.0, 1.0, -1.0)] == pytest.approx([0.0, 0.5, 0.75, 0.375], abs=1e-12)


def test_threshold_adaptation_hand_values() -> None:
    trace = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    spikes = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    decay = torch.tensor([[0.5, 0.9]], dtype=torch.float64)
    weights = torch.tensor([[[0.2, -0.1]]], dtype=torch.float64)  # one postsynaptic neuron
    trace, threshold = adapt_threshold(trace, spikes, decay, weights, torch.tensor([[1.0]], dtype=torch.float64))
    assert trace.tolist() == [[1.5, 1.0]] and threshold.item() == pytest.approx(1.0 + 0.3 - 0.1)


@pytest.mark.parametrize("variant", ["lif", "recurrent", "iwta", "recurrent-iwta"])
def test_batched_population_equals_per_individual_loop(variant: str) -> None:
    arch = SNNArchitecture(hidden=8, variant=variant, readout_decay_max=0.3 if "iwta" in variant else 1.0)
    rng = np.random.default_rng(0)
    genomes = np.clip(arch.initial_genome(rng) + 0.15 * rng.standard_normal((5, arch.size)), 0, 1)
    errors = 0.6 * np.sin(np.linspace(0, 12, 300))
    batched = SNNPopulation(arch, genomes)
    together = batched.run(errors)
    assert batched.spike_counts["hidden"].sum() > 0
    for p in range(5):
        alone = SNNPopulation(arch, genomes[p : p + 1])
        assert torch.equal(alone.run(errors)[:, 0], together[:, p])
        assert torch.equal(alone.spike_counts["hidden"][0], batched.spike_counts["hidden"][p])
    target = torch.as_tensor(9 * errors)
    losses = imitation_loss(together, target)
    assert losses.shape == (5,)
    assert imitation_loss(target[:, None], target)[0].item() == pytest.approx(0.0, abs=1e-12)  # perfect imitation


def test_genome_size_and_bad_genomes() -> None:
    assert SNNArchitecture(variant="lif").size == 361  # 20 + 20 + 40 + 40 + 80 + 40 + 40 + 40 + 40 + 1
    assert SNNArchitecture(variant="iwta").size == 361 + 40 + 1600
    arch = SNNArchitecture(hidden=4)
    with pytest.raises(ValueError, match=r"genomes must have shape \[P, 37\]"):
        arch.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        arch.decode(np.full((1, arch.size), np.nan))
    with pytest.raises(ValueError, match="valid: lif, recurrent, iwta, recurrent-iwta"):
        SNNArchitecture(variant="alif")


def test_summed_controller_adds_commands() -> None:
    arch, genome = hand_network()
    both = SummedController(PID(PIDGains(kp=1.0, ki=0.0, kd=0.0)), SNNController(arch, genome))
    assert [both(e) for e in (1.0, 1.0)] == pytest.approx([1.0, 1.5])
    both.reset()
    assert both(1.0) == pytest.approx(1.0) and both.activity()["spikes_encoding"] == 1


def test_integrator_genome_integrates_the_error_in_the_synaptic_currents() -> None:
    """Non-leaky encoding pairs are sigma-delta modulators (count difference 2 w Σe, ±1 spike each), the hidden
    synaptic currents sum the difference times a_k, and the command tracks Ki T Σe, mirrored for -e, 0 at e = 0."""
    from agents.blimp.integrator import integrator_genome

    arch = SNNArchitecture(hidden=40, variant="lif", readout_decay_max=0.3)
    gain = 0.075  # Ki T of the deployed PID
    genome = integrator_genome(arch, gain, encoding_decay=1.0, hidden_decay=1.0)  # the exact modulator
    outputs = {}
    for error in (0.1, -0.1, 0.0):
        net = SNNPopulation(arch, genome[None, :])
        outputs[error] = net.run(np.full(60, error))[:, 0].numpy()
        if error:
            coupling = net.params["hid_weight"][0, :, 0, 0].numpy()  # a_k
            currents = net.hidden.current[0].view(-1, 2).numpy()  # (c+, c-) per pair
            assert currents[:, 0] == pytest.approx(-currents[:, 1])
            assert (np.abs(currents[:, 0] - coupling * 2 * 0.5 * error * 60) <= 2 * coupling + 1e-12).all()
    assert (outputs[0.0] == 0).all()
    assert outputs[-0.1] == pytest.approx(-outputs[0.1])
    integral = gain * 0.1 * np.arange(1, 61)
    assert outputs[0.1][-20:].mean() == pytest.approx(integral[-20:].mean(), rel=0.2)
    with pytest.raises(ValueError, match="hid_weight of the integrator leaves its bounds"):
        integrator_genome(arch, 50.0)
    pd_shaped = SNNArchitecture(hidden=40, variant="lif")  # readout retention up to 1: still 0.3, same command
    same = SNNPopulation(pd_shaped, integrator_genome(pd_shaped, gain, encoding_decay=1.0, hidden_decay=1.0)[None, :])
    np.testing.assert_array_equal(same.run(np.full(60, -0.1))[:, 0].numpy(), outputs[-0.1])


def test_pd_plus_integrator_snn_removes_the_negative_buoyancy_offset() -> None:
    from agents.blimp.integrator import integrator_genome

    arch = SNNArchitecture(hidden=40, variant="lif", readout_decay_max=0.3)
    snn_i = SNNController(arch, integrator_genome(arch, 0.075))
    env = BlimpAltitudeEnv(profile="paper-pd", buoyancy="negative")
    metrics = flight_metrics(fly(env, SummedController(PID(PIDGains(ki=0.0)), snn_i), 0, {"step": 0.5}))
    assert metrics["sse_cm"] < 3.0  # PD alone: ≈ 35 cm (previous test)
    assert abs(metrics["sse_signed_cm"]) < 2.0
    assert metrics["spikes_per_s_hidden"] > 0


@pytest.mark.parametrize("variant", ["recurrent", "iwta", "recurrent-iwta"])
def test_integrator_genome_of_every_variant_flies_like_the_lif_one(variant: str) -> None:
    from agents.blimp.integrator import integrator_genome

    errors = np.sin(np.linspace(0, 6, 80)) * 0.3
    outputs = []
    for name in ("lif", variant):
        arch = SNNArchitecture(hidden=40, variant=name, readout_decay_max=0.3)
        outputs.append(SNNPopulation(arch, integrator_genome(arch, 0.075)[None, :]).run(errors)[:, 0])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)  # zero recurrent / threshold weights
