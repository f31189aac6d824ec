"""One definition per constant table: decode codes and LIF constants are shared by every implementation."""

from __future__ import annotations

import torch

import agents.export.quantization as quantization
from agents.actors import ActorConfig, build_actor, mlp
from agents.actors.mlp import MLPActor
from agents.rllib import modules as rllib_modules
from agents.traffic import networks as traffic_networks
from neurons import event_kernels
from neurons.lif import CurrentLIF, LIFParameters
from neurons.readout import DECODE_CODES, DECODE_MODES


def test_one_decode_table() -> None:
    assert quantization.DECODE_CODES is DECODE_CODES  # the generated C's DECODE macro
    assert set(DECODE_MODES) | {"rate"} == set(DECODE_CODES) and len(set(DECODE_CODES.values())) == len(DECODE_CODES)
    kernel = (event_kernels.DECODE_LAST, event_kernels.DECODE_MEAN, event_kernels.DECODE_MAX_ABS)
    assert kernel == tuple(DECODE_CODES[m] for m in DECODE_MODES) and event_kernels.DECODE_RATE == DECODE_CODES["rate"]


def test_one_lif_definition() -> None:
    assert ActorConfig().lif_parameters == LIFParameters() == CurrentLIF().params
    config = ActorConfig(name="noisysan", hidden_sizes=[8], current_decay=0.25, voltage_decay=0.9, threshold=0.7)
    actor = build_actor(3, 2, config)
    assert actor.neurons.params == config.lif_parameters
    assert all(neuron.params == config.lif_parameters for neuron in actor.noisy_neurons)
    assert quantization.layer_neuron_params(actor) == [config.lif_parameters] * len(actor.layers)


def test_one_mlp_builder() -> None:
    assert rllib_modules.mlp is mlp and traffic_networks.mlp is mlp
    net = mlp([3, 5, 2])
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear"]
    assert [k for k in MLPActor(3, 2, [5]).state_dict()] == [f"net.{k}" for k in net.state_dict()]
    torch.testing.assert_close(net(torch.zeros(1, 3)), net[2](torch.relu(net[0].bias)).unsqueeze(0))
