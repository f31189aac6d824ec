"""Unit tests for the ``neurons`` package. Expected values are worked out by hand (arithmetic in comments)."""

from __future__ import annotations

import math

import pytest
import torch

import neurons.lif
from neurons.encoders import PopulationEncoder
from neurons.intra_layer import CONNECTION_MODES, IntraLayerConnections
from neurons.lif import CurrentLIF, LIFParameters, current_lif_scan, scan_reference
from neurons.readout import NonSpikingReadout
from neurons.surrogate import spike
from neurons.synapses import EVENT_FAN_OUT_MIN, GroupedLinear, SpikeEvents, spike_linear


@pytest.fixture(params=["kernel", "torch"])
def lif_path(request, monkeypatch):
    """Run a test on the numba kernels and on the torch fallback (``_use_kernels`` forced to False)."""
    if request.param == "torch":
        monkeypatch.setattr(neurons.lif, "_use_kernels", lambda tensor: False)
    return request.param


def column(values, dtype=torch.float64) -> torch.Tensor:
    """A single-neuron trace ``[T, 1, 1]``."""
    return torch.tensor(values, dtype=dtype).view(-1, 1, 1)


# ---------------------------------------------------------------------------------------------------------------
# surrogate.spike
# ---------------------------------------------------------------------------------------------------------------


def test_spike_forward_is_strict_heaviside():
    v = torch.tensor([-1.0, 0.0, 0.49, 0.5, 0.51, 2.0])
    assert spike(v, threshold=0.5).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]  # v == threshold -> 0
    assert spike(torch.tensor([1.0, 1.5, 1.6]), threshold=1.5).tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("width", "height", "inside", "outside"),
    [
        # width 0.5: box |v - 0.5| < 0.5, height 1 / (2 * 0.5) = 1
        # (the edges v = 0 and v = 1 are |v - 0.5| = 0.5, not < 0.5 -> 0)
        (0.5, 1.0, [0.01, 0.2, 0.5, 0.8, 0.99], [-0.5, -0.01, 0.0, 1.0, 1.01, 2.0]),
        # width 0.25: box |v - 0.5| < 0.25, height 1 / (2 * 0.25) = 2 (unit area)
        (0.25, 2.0, [0.26, 0.4, 0.5, 0.6, 0.74], [0.0, 0.2, 0.25, 0.75, 0.8, 1.0]),
    ],
)
def test_spike_surrogate_gradient_is_unit_area_box(width, height, inside, outside):
    v = torch.tensor(inside + outside, requires_grad=True)
    spike(v, threshold=0.5, width=width).sum().backward()
    assert v.grad.tolist() == [height] * len(inside) + [0.0] * len(outside)


def test_spike_surrogate_scales_upstream_gradient():
    v = torch.tensor([0.6, 0.3, 5.0], requires_grad=True)
    (spike(v, threshold=0.5) * torch.tensor([3.0, -2.0, 7.0])).sum().backward()
    assert v.grad.tolist() == [3.0, -2.0, 0.0]  # 1 * 3, 1 * -2, outside the box -> 0


@pytest.mark.parametrize("width", [0.0, -0.5])
def test_spike_invalid_width_raises(width):
    with pytest.raises(ValueError, match="width"):
        spike(torch.zeros(3), 0.5, width)


# ---------------------------------------------------------------------------------------------------------------
# CurrentLIF: hand traces
# ---------------------------------------------------------------------------------------------------------------


def test_lif_three_step_trace_default_params(lif_path):
    # a_c = 0.5, a_v = 0.75, th = 0.5, I = 0.2 every step
    # c = 0.2, 0.5*0.2 + 0.2 = 0.3, 0.5*0.3 + 0.2 = 0.35
    # h = 0.2, 0.75*0.2 + 0.3 = 0.45, 0.75*0.45 + 0.35 = 0.6875 -> spikes 0, 0, 1
    spikes, membrane = current_lif_scan(column([0.2, 0.2, 0.2]), LIFParameters())
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(membrane.flatten(), torch.tensor([0.2, 0.45, 0.6875], dtype=torch.float64))
    layer = CurrentLIF()
    assert layer(column([0.2, 0.2, 0.2], torch.float32)).flatten().tolist() == [0.0, 0.0, 1.0]


def test_lif_hard_reset_after_spike(lif_path):
    # Continue the trace above: spike at t = 2 resets v_2 = 0, so h_3 is only c_3.
    # c_3 = 0.5*0.35 + 0.2 = 0.375,  h_3 = 0.75*0 + 0.375 = 0.375           -> 0
    # c_4 = 0.5*0.375 + 0.2 = 0.3875, h_4 = 0.75*0.375 + 0.3875 = 0.66875   -> 1
    spikes, membrane = current_lif_scan(column([0.2] * 5), LIFParameters())
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 1.0]
    expected = torch.tensor([0.2, 0.45, 0.6875, 0.375, 0.66875], dtype=torch.float64)
    torch.testing.assert_close(membrane.flatten(), expected)


def test_lif_spike_on_first_step_resets(lif_path):
    # I = [0.9, 0, 0]: h_0 = 0.9 -> spike, v_0 = 0
    # c_1 = 0.45, h_1 = 0 + 0.45 = 0.45 -> 0;  c_2 = 0.225, h_2 = 0.75*0.45 + 0.225 = 0.5625 -> 1
    spikes, membrane = current_lif_scan(column([0.9, 0.0, 0.0]), LIFParameters())
    assert spikes.flatten().tolist() == [1.0, 0.0, 1.0]
    torch.testing.assert_close(membrane.flatten(), torch.tensor([0.9, 0.45, 0.5625], dtype=torch.float64))


def test_lif_configurable_decays_and_threshold(lif_path):
    # a_c = 1.0, a_v = 0.5, th = 1.0, I = 0.3
    # c = 0.3, 0.6, 0.9, 1.2
    # h_0 = 0.3; h_1 = 0.15 + 0.6 = 0.75; h_2 = 0.375 + 0.9 = 1.275 -> spike, v = 0; h_3 = 0 + 1.2 = 1.2 -> spike
    params = LIFParameters(current_decay=1.0, voltage_decay=0.5, threshold=1.0)
    spikes, membrane = current_lif_scan(column([0.3] * 4), params)
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(membrane.flatten(), torch.tensor([0.3, 0.75, 1.275, 1.2], dtype=torch.float64))
    # Same input with the defaults: c = 0.3, 0.45, 0.525, 0.5625; h = 0.3, 0.675 (spike), 0.525 (spike), 0.5625
    spikes, membrane = current_lif_scan(column([0.3] * 4), LIFParameters())
    assert spikes.flatten().tolist() == [0.0, 1.0, 1.0, 1.0]
    torch.testing.assert_close(membrane.flatten(), torch.tensor([0.3, 0.675, 0.525, 0.5625], dtype=torch.float64))
    # no memory: s_t = [I_t > 0.25]; I = 0.25 is exactly at threshold -> 0
    layer = CurrentLIF(LIFParameters(current_decay=0.0, voltage_decay=0.0, threshold=0.25))
    assert layer(column([0.2, 0.3, 0.25, 0.1, 1.0])).flatten().tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_lif_recurrent_block_direction(lif_path):
    # G = 1, P = 2, blocks[0] = [[0, 0], [0.8, 0]]: neuron 0 drives neuron 1 (blocks[g, i, j]: j -> i).
    # I = [[0.6, 0], [0, 0], [0, 0]]
    # t0: h = [0.6, 0]                         s = [1, 0]
    # t1: c = [0.3, 0 + 0.8*1] = [0.3, 0.8]; h = [0 + 0.3, 0 + 0.8]     s = [0, 1]
    # t2: c = [0.15, 0.4];  h = [0.75*0.3 + 0.15 = 0.375, 0 + 0.4]      s = [0, 0]
    current = torch.zeros(3, 1, 2, dtype=torch.float64)
    current[0, 0, 0] = 0.6
    blocks = torch.tensor([[[0.0, 0.0], [0.8, 0.0]]], dtype=torch.float64)
    spikes, membrane = current_lif_scan(current, LIFParameters(), blocks)
    assert spikes[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    expected = torch.tensor([[0.6, 0.0], [0.3, 0.8], [0.375, 0.4]], dtype=torch.float64)
    torch.testing.assert_close(membrane[:, 0], expected)


def test_lif_parameter_and_shape_validation():
    with pytest.raises(ValueError, match="current_decay"):
        LIFParameters(current_decay=1.5)
    with pytest.raises(ValueError, match="voltage_decay"):
        LIFParameters(voltage_decay=-0.1)
    with pytest.raises(ValueError, match="surrogate_width"):
        LIFParameters(surrogate_width=0.0)
    with pytest.raises(ValueError, match=r"\[T, B, F\]"):
        current_lif_scan(torch.zeros(3, 4), LIFParameters())
    with pytest.raises(ValueError, match=r"\[G, P, P\]"):
        current_lif_scan(torch.zeros(3, 1, 6), LIFParameters(), torch.zeros(2, 2, 2))


# ---------------------------------------------------------------------------------------------------------------
# CurrentLIF: fused gradient vs. plain autograd
# ---------------------------------------------------------------------------------------------------------------


def autograd_lif(current: torch.Tensor, params: LIFParameters, blocks: torch.Tensor | None = None) -> torch.Tensor:
    """Plain per-step CUBA-LIF with autograd through ``spike`` and a non-detached hard reset."""
    steps, batch, features = current.shape
    c = torch.zeros_like(current[0])
    v = torch.zeros_like(current[0])
    s = torch.zeros_like(current[0])
    out = []
    for t in range(steps):
        c = params.current_decay * c + current[t]
        if blocks is not None:
            groups, pop, _ = blocks.shape
            prev = s.view(batch, groups, pop)
            rec = torch.stack([prev[:, g] @ blocks[g].T for g in range(groups)], dim=1)  # blocks[g] @ s[g]
            c = c + rec.reshape(batch, features)
        h = params.voltage_decay * v + c
        s = spike(h, params.threshold, params.surrogate_width)
        v = h * (1 - s)
        out.append(s)
    return torch.stack(out)


LIF_CASES = [
    (LIFParameters(), False),
    (LIFParameters(), True),
    (LIFParameters(current_decay=0.3, voltage_decay=0.9, threshold=0.7, surrogate_width=0.25), True),
]


def _random_problem(with_blocks: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    steps, batch, groups, pop = 6, 3, 2, 4
    current = (0.5 * torch.randn(steps, batch, groups * pop, generator=gen, dtype=torch.float64) + 0.3).requires_grad_()
    blocks = None
    if with_blocks:
        blocks = (0.4 * torch.randn(groups, pop, pop, generator=gen, dtype=torch.float64)).requires_grad_()
    weight = torch.randn(steps, batch, groups * pop, generator=gen, dtype=torch.float64)
    return current, blocks, weight


def _grads(fn, current, blocks, weight):
    current.grad = None
    if blocks is not None:
        blocks.grad = None
    spikes = fn()
    (spikes * weight).sum().backward()
    return spikes.detach(), current.grad.clone(), None if blocks is None else blocks.grad.clone()


@pytest.mark.parametrize(("params", "with_blocks"), LIF_CASES)
def test_lif_fused_gradient_matches_autograd(params, with_blocks):
    current, blocks, weight = _random_problem(with_blocks)
    ref_s, ref_gi, ref_gb = _grads(lambda: autograd_lif(current, params, blocks), current, blocks, weight)
    s, gi, gb = _grads(lambda: current_lif_scan(current, params, blocks)[0], current, blocks, weight)
    assert 0 < ref_s.mean() < 1  # some but not all neurons fire
    assert ref_gi.abs().sum() > 0
    torch.testing.assert_close(s, ref_s, atol=0, rtol=0)
    torch.testing.assert_close(gi, ref_gi, atol=1e-5, rtol=0)
    if with_blocks:
        assert ref_gb.abs().sum() > 0
        torch.testing.assert_close(gb, ref_gb, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("params", "with_blocks"), LIF_CASES)
def test_lif_torch_fallback_matches_kernels(params, with_blocks, monkeypatch):
    current, blocks, weight = _random_problem(with_blocks, seed=1)
    kernel_s, kernel_m = current_lif_scan(current.detach(), params, None if blocks is None else blocks.detach())
    ref_s, ref_m = scan_reference(current.detach(), params, None if blocks is None else blocks.detach())
    torch.testing.assert_close(ref_s, kernel_s, atol=0, rtol=0)
    torch.testing.assert_close(ref_m, kernel_m, atol=1e-12, rtol=0)

    s, gi, gb = _grads(lambda: current_lif_scan(current, params, blocks)[0], current, blocks, weight)
    monkeypatch.setattr(neurons.lif, "_use_kernels", lambda tensor: False)
    fs, fgi, fgb = _grads(lambda: current_lif_scan(current, params, blocks)[0], current, blocks, weight)
    torch.testing.assert_close(fs, s, atol=0, rtol=0)
    torch.testing.assert_close(fgi, gi, atol=1e-12, rtol=0)
    if with_blocks:
        torch.testing.assert_close(fgb, gb, atol=1e-12, rtol=0)


def test_lif_float32_kernel_gradient_matches_autograd():
    current, blocks, weight = _random_problem(True, seed=2)
    current = current.detach().float().requires_grad_()
    blocks = blocks.detach().float().requires_grad_()
    weight = weight.float()
    ref_s, ref_gi, ref_gb = _grads(lambda: autograd_lif(current, LIFParameters(), blocks), current, blocks, weight)
    s, gi, gb = _grads(lambda: current_lif_scan(current, LIFParameters(), blocks)[0], current, blocks, weight)
    torch.testing.assert_close(s, ref_s, atol=0, rtol=0)
    torch.testing.assert_close(gi, ref_gi, atol=1e-5, rtol=0)
    torch.testing.assert_close(gb, ref_gb, atol=1e-5, rtol=0)


@pytest.mark.parametrize("use_kernels", [True, False])
def test_lif_fused_bias_equals_adding_it_to_the_current(use_kernels, monkeypatch):
    if not use_kernels:
        monkeypatch.setattr(neurons.lif, "_use_kernels", lambda tensor: False)
    current, blocks, weight = _random_problem(True, seed=3)
    bias = torch.linspace(-0.2, 0.3, current.shape[-1], dtype=torch.float64, requires_grad=True)
    (current_lif_scan(current, LIFParameters(), blocks, bias)[0] * weight).sum().backward()
    fused = (current.grad.clone(), bias.grad.clone(), blocks.grad.clone())
    current.grad = bias.grad = blocks.grad = None
    (current_lif_scan(current + bias, LIFParameters(), blocks)[0] * weight).sum().backward()
    for got, expected in zip(fused, (current.grad, bias.grad, blocks.grad)):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    assert fused[1].abs().sum() > 0
    with pytest.raises(ValueError, match=r"bias must have shape \[8\], got \(3,\)"):
        current_lif_scan(current, LIFParameters(), blocks, torch.zeros(3, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------------------------
# spike_linear (event-driven matmul for spike inputs)
# ---------------------------------------------------------------------------------------------------------------


def test_spike_events_lists_spikes_by_row_and_by_input():
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [0.0] * 5, [1.0, 0.0, 1.0, 0.0, 0.0]])  # 4 of 15: density 0.27
    events = SpikeEvents.find(x)
    assert events is not None
    assert events.cols.tolist() == [1, 2, 0, 2] and events.row_offsets.tolist() == [0, 2, 2, 4]
    rows, col_offsets = events.by_input()
    assert rows.tolist() == [2, 0, 0, 2] and col_offsets.tolist() == [0, 1, 2, 4, 4]
    assert SpikeEvents.find(torch.tensor([[0.0, 0.5]])) is None  # not binary
    assert SpikeEvents.find(torch.ones(4, 4)) is None  # too dense
    assert SpikeEvents.find(x.double()) is None


def test_spike_events_match_nonzero_for_widths_that_are_not_multiples_of_eight():
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(60, 37, generator=gen) < 0.2).float()
    x[x == 0] = torch.where(torch.rand(int((x == 0).sum()), generator=gen) < 0.5, -0.0, 0.0)  # -0.0 is no spike
    events = SpikeEvents.find(x)
    rows, cols = torch.nonzero(x, as_tuple=True)
    assert events.cols.tolist() == cols.tolist()
    assert events.row_offsets.tolist() == [0, *torch.bincount(rows, minlength=60).cumsum(0).tolist()]
    by_input_rows, offsets = events.by_input()
    order = torch.argsort(cols * 60 + rows)
    assert by_input_rows.tolist() == rows[order].tolist()
    assert offsets.tolist() == [0, *torch.bincount(cols, minlength=37).cumsum(0)[:-1].tolist()]
    assert SpikeEvents.find(torch.cat([x, -torch.ones(1, 37)])) is None  # -1 is not a spike


@pytest.mark.parametrize("density", [0.1, 0.6])
def test_spike_linear_matches_dense_linear(density):
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(300, 40, generator=gen) < density).float().requires_grad_()
    weight = torch.randn(EVENT_FAN_OUT_MIN, 40, generator=gen, requires_grad=True)
    upstream = torch.randn(300, EVENT_FAN_OUT_MIN, generator=gen)
    (spike_linear(x, weight) * upstream).sum().backward()
    got = (x.grad.clone(), weight.grad.clone())
    x.grad = weight.grad = None
    expected_out = x @ weight.t()
    (expected_out * upstream).sum().backward()
    torch.testing.assert_close(spike_linear(x, weight), expected_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(got[0], x.grad, atol=1e-4, rtol=0)
    torch.testing.assert_close(got[1], weight.grad, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="spike_linear needs x"):
        spike_linear(x, weight.t())


def test_spike_linear_straight_through_source_gets_the_gradient_of_every_step():
    gen = torch.Generator().manual_seed(2)
    steps, batch = 3, 7
    activation = torch.rand(batch, 40, generator=gen, requires_grad=True)
    spikes = (torch.rand(steps, batch, 40, generator=gen) < 0.15).float()
    weight = torch.randn(EVENT_FAN_OUT_MIN, 40, generator=gen, requires_grad=True)
    upstream = torch.randn(steps * batch, EVENT_FAN_OUT_MIN, generator=gen)
    (spike_linear(spikes.view(steps * batch, -1), weight, activation) * upstream).sum().backward()
    got = (activation.grad.clone(), weight.grad.clone())
    activation.grad = weight.grad = None
    explicit = (spikes + (activation - activation.detach())).view(steps * batch, -1)  # straight-through by hand
    (explicit @ weight.t() * upstream).sum().backward()
    torch.testing.assert_close(got[0], activation.grad, atol=1e-4, rtol=0)
    torch.testing.assert_close(got[1], weight.grad, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"straight_through must have shape \[B, 40\]"):
        spike_linear(spikes.view(steps * batch, -1), weight, activation[:4])
    with pytest.raises(ValueError, match="must not require grad"):
        spike_linear(explicit, weight, activation)


def test_spike_linear_takes_the_event_path_only_for_sparse_binary_input(monkeypatch):
    calls = []
    real = SpikeEvents.find
    monkeypatch.setattr(SpikeEvents, "find", classmethod(lambda cls, x: calls.append(x.shape) or real(x)))
    sparse = (torch.rand(50, 20) < 0.1).float()
    spike_linear(sparse, torch.randn(EVENT_FAN_OUT_MIN, 20))
    spike_linear(sparse, torch.randn(EVENT_FAN_OUT_MIN - 1, 20))  # narrow layer: dense GEMM, no event search
    assert calls == [(50, 20)]
    noisy = sparse + 0.01  # real-valued input (e.g. transmission noise) still gives the exact product
    weight = torch.randn(EVENT_FAN_OUT_MIN, 20)
    torch.testing.assert_close(spike_linear(noisy, weight), noisy @ weight.t())


# ---------------------------------------------------------------------------------------------------------------
# PopulationEncoder
# ---------------------------------------------------------------------------------------------------------------


def test_encoder_initialisation():
    enc = PopulationEncoder(obs_dim=2, pop_size=10)
    # linspace(-3, 3, 10): step 6/9 = 2/3
    expected = torch.tensor([-3, -7 / 3, -5 / 3, -1, -1 / 3, 1 / 3, 1, 5 / 3, 7 / 3, 3], dtype=torch.float32)
    for i in range(2):
        torch.testing.assert_close(enc.mean.data[i], expected)
    torch.testing.assert_close(enc.std.data, torch.full((2, 10), 0.3872983346207417))  # sqrt(0.15)
    assert enc.num_neurons == 20


def test_encoder_receptive_field_values():
    enc = PopulationEncoder(obs_dim=2, pop_size=10)
    a = enc.receptive_field(torch.tensor([[0.0, 1.0]]))
    assert a.shape == (1, 20)
    # dim 0, x = 0: mu_4 = -1/3 -> exp(-0.5 * (1/9) / 0.15) = exp(-0.370370..) = 0.690479..
    #               mu_3 = -1   -> exp(-0.5 * 1 / 0.15)     = exp(-3.333333..) = 0.035674..
    #               mu_0 = -3   -> exp(-0.5 * 9 / 0.15)     = exp(-30)         = 9.3576e-14
    assert a[0, 4].item() == pytest.approx(0.6904786, rel=1e-5)
    assert a[0, 5].item() == pytest.approx(0.6904786, rel=1e-5)  # mu_5 = +1/3, symmetric
    assert a[0, 3].item() == pytest.approx(0.0356740, rel=1e-4)
    assert a[0, 0].item() == pytest.approx(9.3576e-14, rel=1e-3)
    # dim 1, x = 1 sits on the centre mu_6 = 1 -> A = 1
    #        mu_7 = 5/3: exp(-0.5 * (4/9) / 0.15) = exp(-1.481481..) = 0.227301..
    assert a[0, 16].item() == pytest.approx(1.0, abs=1e-6)
    assert a[0, 17].item() == pytest.approx(0.2273007, rel=1e-5)


def _encoder_with_activations():
    """obs_dim 1, pop 4, std 1, obs 0: A = exp(-mu^2 / 2) = [1, 0.5, 0.3, ~0] for these centres."""
    enc = PopulationEncoder(obs_dim=1, pop_size=4)
    with torch.no_grad():
        enc.std.fill_(1.0)
        # mu = sqrt(-2 ln A): A=1 -> 0; A=0.5 -> sqrt(2 ln 2) = 1.17741;
        # A=0.3 -> sqrt(-2 ln 0.3) = 1.55176; mu=10 -> e^-50
        enc.mean.copy_(torch.tensor([[0.0, math.sqrt(2 * math.log(2)), math.sqrt(-2 * math.log(0.3)), 10.0]]))
    return enc


def test_encoder_deterministic_spike_trains():
    enc = _encoder_with_activations()
    torch.testing.assert_close(
        enc.receptive_field(torch.zeros(1, 1))[0], torch.tensor([1.0, 0.5, 0.3, 0.0]), atol=1e-6, rtol=0
    )
    spikes = enc(torch.zeros(1, 1), steps=7)
    assert spikes.shape == (7, 1, 4)
    # IF neuron, u += A, spike if u > 0.999, u -= 0.999:
    # A = 1:   u = 1 > .999 every step (residue grows by .001)           -> 1 1 1 1 1 1 1
    # A = 0.5: u = .5, 1.0 (spike -> .001), .501, 1.001 (spike -> .002), .502, 1.002 (spike), .503 -> 0 1 0 1 0 1 0
    # A = 0.3: u = .3, .6, .9, 1.2 (spike -> .201), .501, .801, 1.101 (spike)                    -> 0 0 0 1 0 0 1
    # A ~ 0:   never reaches threshold                                                          -> 0 0 0 0 0 0 0
    expected = [
        [1, 1, 1, 1, 1, 1, 1],
        [0, 1, 0, 1, 0, 1, 0],
        [0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    assert spikes[:, 0].T.tolist() == expected
    # Centre of a default receptive field: x = 1 = mu_6 of pop 10 -> A = 1 -> T of T spikes
    default = PopulationEncoder(obs_dim=1, pop_size=10)
    assert default(torch.tensor([[1.0]]), steps=5)[:, 0, 6].tolist() == [1.0] * 5


def test_encoder_bernoulli_rates():
    torch.manual_seed(0)
    enc = _encoder_with_activations()
    enc.spike_mode = "bernoulli"
    batch, steps = 4000, 5
    spikes = enc(torch.zeros(batch, 1), steps=steps)
    assert spikes.shape == (steps, batch, 4)
    assert set(spikes.detach().unique().tolist()) <= {0.0, 1.0}
    rate = spikes.detach().mean(dim=(0, 1))
    # 20000 samples per neuron: std of the rate <= sqrt(0.25 / 20000) = 0.0035; tolerance ~ 6 sigma
    assert rate[0].item() == 1.0
    assert rate[1].item() == pytest.approx(0.5, abs=0.02)
    assert rate[2].item() == pytest.approx(0.3, abs=0.02)
    assert rate[3].item() == 0.0
    assert PopulationEncoder(1, 4, spike_mode="bernoulli").spike_mode == "bernoulli"


@pytest.mark.parametrize("mode", ["deterministic", "bernoulli"])
def test_encoder_straight_through_gradient(mode):
    enc = PopulationEncoder(obs_dim=1, pop_size=2, spike_mode=mode)
    with torch.no_grad():
        enc.mean.copy_(torch.tensor([[0.0, 3.0]]))
        enc.std.copy_(torch.tensor([[1.0, 2.0]]))
    steps = 5
    enc(torch.tensor([[1.0]]), steps=steps).sum().backward()
    # d(sum_t s_t)/dA = T.  A = exp(-(x - mu)^2 / (2 sigma^2)):
    #   dA/dmu = A (x - mu) / sigma^2,   dA/dsigma = A (x - mu)^2 / sigma^3
    # neuron 0: x - mu = 1, sigma = 1 -> A = e^-0.5 = 0.6065307; dmu = 0.6065307, dsigma = 0.6065307
    # neuron 1: x - mu = -2, sigma = 2 -> A = e^-0.5; dmu = A * -2 / 4 = -0.3032653, dsigma = A * 4 / 8 = 0.3032653
    torch.testing.assert_close(enc.mean.grad, torch.tensor([[5 * 0.6065307, 5 * -0.3032653]]), rtol=1e-5, atol=0)
    torch.testing.assert_close(enc.std.grad, torch.tensor([[5 * 0.6065307, 5 * 0.3032653]]), rtol=1e-5, atol=0)


def test_encoder_validation():
    enc = PopulationEncoder(obs_dim=3, pop_size=4)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        enc(torch.zeros(2, 4), steps=5)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        enc(torch.zeros(3), steps=5)
    with pytest.raises(ValueError, match="deterministic, bernoulli"):
        PopulationEncoder(obs_dim=3, spike_mode="poisson")
    with pytest.raises(ValueError):
        PopulationEncoder(obs_dim=0)
    with pytest.raises(ValueError):
        PopulationEncoder(obs_dim=1, std=0.0)


# ---------------------------------------------------------------------------------------------------------------
# NonSpikingReadout
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decay", "mode", "expected"),
    [
        # decay 1: V = 1, 1 - 3 = -2, -2 + 1.5 = -0.5
        (1.0, "last", -0.5),
        (1.0, "mean", -0.5),  # (1 - 2 - 0.5) / 3
        (1.0, "max-abs", -2.0),
        # decay 0.5: V = 1, 0.5 - 3 = -2.5, -1.25 + 1.5 = 0.25
        (0.5, "last", 0.25),
        (0.5, "mean", -1.25 / 3),  # (1 - 2.5 + 0.25) / 3 = -0.416666..
        (0.5, "max-abs", -2.5),
        # decay 0: V = u = 1, -3, 1.5
        (0.0, "last", 1.5),
        (0.0, "mean", -0.5 / 3),
        (0.0, "max-abs", -3.0),
    ],
)
def test_readout_decode(decay, mode, expected):
    readout = NonSpikingReadout(decay=decay, mode=mode)
    out = readout(column([1.0, -3.0, 1.5]))
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx(expected, abs=1e-12)
    out32 = readout(column([1.0, -3.0, 1.5], torch.float32))  # kernel cache rebuilt for the new dtype
    assert out32.dtype == torch.float32
    assert out32.item() == pytest.approx(expected, abs=1e-6)


def test_readout_membrane_and_per_neuron_max_abs():
    readout = NonSpikingReadout(decay=0.5, mode="max-abs")
    # neuron 0: u = 1, -3, 1.5 -> V = 1, -2.5, 0.25;  neuron 1: u = 2, 0, 1 -> V = 2, 1, 1.5
    current = torch.tensor([[[1.0, 2.0]], [[-3.0, 0.0]], [[1.5, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(
        readout.membrane(current)[:, 0], torch.tensor([[1.0, 2.0], [-2.5, 1.0], [0.25, 1.5]], dtype=torch.float64)
    )
    assert readout(current).tolist() == [[-2.5, 2.0]]


def test_readout_validation():
    with pytest.raises(ValueError, match="last, mean, max-abs"):
        NonSpikingReadout(mode="max")
    with pytest.raises(ValueError):
        NonSpikingReadout(decay=1.5)
    with pytest.raises(ValueError):
        NonSpikingReadout()(torch.zeros(3, 2))


# ---------------------------------------------------------------------------------------------------------------
# IntraLayerConnections
# ---------------------------------------------------------------------------------------------------------------

P = 3
EYE = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
OFF = [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
ONES = [[1.0] * 3] * 3
ZEROS = [[0.0] * 3] * 3
INTRA_CASES = {
    # mode: (weight mask per group, bias on, fan_out)
    "full": (ONES, 1.0, 3),
    "self": (EYE, 0.0, 1),
    "lateral": (OFF, 0.0, 2),
    "bias": (ZEROS, 1.0, 0),
    "none": (ZEROS, 0.0, 0),
}


def test_intra_layer_covers_all_modes():
    assert set(INTRA_CASES) == set(CONNECTION_MODES)


@pytest.mark.parametrize("mode", list(INTRA_CASES))
def test_intra_layer_masks_and_training(mode):
    torch.manual_seed(0)
    weight_mask, bias_on, fan_out = INTRA_CASES[mode]
    groups = 2
    layer = IntraLayerConnections(groups=groups, pop_size=P, mode=mode)
    assert layer.weight_mask.tolist() == [weight_mask] * groups
    assert layer.bias_mask.tolist() == [bias_on] * (groups * P)
    assert layer.fan_out() == fan_out
    assert layer.has_weights == (mode in ("full", "self", "lateral"))
    assert layer.has_bias == (mode in ("full", "bias"))

    w_on = torch.tensor([weight_mask] * groups).bool()
    b_on = torch.full((groups * P,), bias_on).bool()
    blocks_before = layer.blocks().detach().clone()
    bias_before = layer.masked_bias().detach().clone()
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    loss = (layer.blocks() * torch.randn(groups, P, P)).sum() + (layer.masked_bias() * torch.randn(groups * P)).sum()
    loss = loss + (layer.blocks() ** 2).sum() + (layer.masked_bias() ** 2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    blocks, bias = layer.blocks().detach(), layer.masked_bias().detach()
    assert (blocks[~w_on] == 0).all() and (layer.weight.detach()[~w_on] == 0).all()
    assert (bias[~b_on] == 0).all() and (layer.bias.detach()[~b_on] == 0).all()
    assert (blocks[w_on] != blocks_before[w_on]).all()  # Adam moves every unmasked entry by ~lr
    assert (bias[b_on] != bias_before[b_on]).all()


def test_intra_layer_fan_out_other_sizes_and_bad_mode():
    assert IntraLayerConnections(groups=1, pop_size=5, mode="full").fan_out() == 5
    assert IntraLayerConnections(groups=1, pop_size=5, mode="self").fan_out() == 1
    assert IntraLayerConnections(groups=1, pop_size=5, mode="lateral").fan_out() == 4
    with pytest.raises(ValueError, match="full, self, lateral, bias, none"):
        IntraLayerConnections(groups=1, pop_size=5, mode="dense")


# ---------------------------------------------------------------------------------------------------------------
# GroupedLinear
# ---------------------------------------------------------------------------------------------------------------


def test_grouped_linear_hand_weights():
    layer = GroupedLinear(groups=2, group_size=3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]))
        layer.bias.copy_(torch.tensor([0.1, -0.2]))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype=torch.float32)
    # y0 = 1*1 + 2*2 + 3*3 + 0.1 = 14.1;  y1 = -1*4 + 0.5*5 + 4*6 - 0.2 = 22.3
    torch.testing.assert_close(layer(x), torch.tensor([14.1, 22.3]))
    # leading dims are kept: [T, B, G*P] -> [T, B, G]; second row x = 0 -> y = bias
    batch = torch.stack([x, torch.zeros(6)]).expand(4, 2, 6)
    out = layer(batch)
    assert out.shape == (4, 2, 2)
    torch.testing.assert_close(out[:, 0], torch.tensor([[14.1, 22.3]] * 4))
    torch.testing.assert_close(out[:, 1], torch.tensor([[0.1, -0.2]] * 4))
