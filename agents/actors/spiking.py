"""Population-coded spiking actors: PopSAN (rate decoder) and ILC-SAN (intra-layer connections +
non-spiking readout).

Shared backbone (docs/methods.md, Backbone), for ``T`` SNN steps per environment step::

    obs [B, N] --PopulationEncoder--> spikes [T, B, N*P_e]
      --Linear+CurrentLIF--> ... hidden layers ... --Linear+CurrentLIF--> output populations [T, B, M*P_d]

Each ``Linear`` runs once on all ``T*B`` rows through :func:`neurons.synapses.spike_linear`: its inputs are spikes
(10 % non-zero at initialisation, about 30 % in a trained TD3 actor), so the product and the weight gradient are
sums of the weight / gradient rows selected by the spikes rather than dense GEMMs (dense GEMMs for narrow layers
and dense inputs). The encoder's spikes are straight-through copies of its activation, which receives their
gradient summed over ``T`` (one GEMM on ``B`` rows). The bias is added inside the neuron scan. Only the
elementwise membrane scan is sequential (and, for ILC-SAN, the small block-diagonal recurrence over the output
populations).

Inference at small batch (no autograd, CPU, float32, deterministic encoder, ``B <= EVENT_DRIVEN_MAX_BATCH``)
takes the event-driven path of :mod:`neurons.event_kernels` instead: one compiled call per layer that adds
only the weight rows of inputs that spiked. It computes the same equations; results can differ from the
batched path only by floating-point summation order. The kernel reads the parameters in place, through
NumPy views of their memory (the ``Linear`` weights are stored input-major, so ``W^T`` is a contiguous
view), and applies the intra-layer masks itself: it sees every write to the weights, however it is made
(optimizer steps, ``load_state_dict``, ``.data`` writes, SB3's ``polyak_update``, in-place edits under
``torch.no_grad()``). The views are rebuilt when a parameter is replaced or its storage moves
(``.data = ...``, ``.to()``); a weight assigned in row-major layout is copied on every call instead.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import nn

from agents.activity import ActivityReport
from agents.actors.base import ActorNetwork
from agents.actors.config import ActorConfig
from neurons import (
    CurrentLIF,
    GroupedLinear,
    IntraLayerConnections,
    NonSpikingReadout,
    PopulationEncoder,
    event_kernels,
)
from neurons.encoders import ENCODER_THRESHOLD_F32
from neurons.readout import DECODE_CODES
from neurons.synapses import input_major, spike_linear

EVENT_DRIVEN_MAX_BATCH = 24  # `make bench`, HalfCheetah shapes: kernel 4.1x faster at B = 4, 1.1x at 24, 0.9x at 32
_NO_BLOCKS = np.zeros((0, 1, 1), np.float32)


class SpikingActor(ActorNetwork):
    """Encoder + CUBA-LIF backbone ending in ``act_dim`` output populations; subclasses decode them."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig, connections: str = "none") -> None:
        super().__init__(obs_dim, act_dim)
        self.timesteps = config.timesteps
        self.decoder_pop = config.decoder_pop
        low, high = config.encoder_mean_range
        self.encoder = PopulationEncoder(obs_dim, config.encoder_pop, (low, high), config.encoder_std, config.encoder)
        sizes = [self.encoder.num_neurons, *config.hidden_sizes, act_dim * config.decoder_pop]
        self.layers = nn.ModuleList(input_major(nn.Linear(a, b)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.neurons = CurrentLIF(config.lif_parameters)
        self.intra = IntraLayerConnections(act_dim, config.decoder_pop, connections) if connections != "none" else None
        self.layer_names = ["encoder", *[f"hidden{i + 1}" for i in range(len(config.hidden_sizes))], "output"]
        self.layer_widths = tuple(sizes)
        self._last_spikes: list[torch.Tensor | np.ndarray] = []
        self.event_driven = True  # may take the event-driven inference path (see module docstring)
        self._event_views: tuple[tuple, tuple] | None = None  # (storage key, kernel arguments), see _event_arrays

    def _bias_and_blocks(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Bias ``[F]`` and recurrent blocks ``[G, P, P]`` (or None) of layer ``index``; the output layer
        carries the intra-layer connections."""
        bias = self.layers[index].bias
        if index < len(self.layers) - 1 or self.intra is None:
            return bias, None
        return bias + self.intra.masked_bias(), self.intra.blocks() if self.intra.has_weights else None

    def output_spikes(self, obs: torch.Tensor, noise: list | None = None) -> torch.Tensor:
        """Output-population spikes ``[T, B, act_dim * decoder_pop]`` for observations ``[B, obs_dim]``;
        ``noise`` (noisy actors only) holds one entry per layer for :meth:`fire`."""
        steps, batch = self.timesteps, obs.shape[0]
        spikes, activation = self.encoder.encode(obs, steps)
        source: torch.Tensor | None = activation  # straight-through source of the encoder spikes
        record = [spikes]
        for index, layer in enumerate(self.layers):
            bias, recurrent = self._bias_and_blocks(index)
            current = spike_linear(spikes.reshape(steps * batch, -1), layer.weight, source).view(steps, batch, -1)
            source = None
            spikes = self.fire(index, current, bias, recurrent, None if noise is None else noise[index])
            record.append(spikes.detach())
        self._last_spikes = record
        return spikes

    def fire(
        self, index: int, current: torch.Tensor, bias: torch.Tensor, blocks: torch.Tensor | None, noise: object
    ) -> torch.Tensor:
        """Spikes ``[T, B, F]`` that layer ``index`` transmits for input current ``[T, B, F]`` + ``bias [F]``."""
        if noise is not None:
            raise ValueError(f"{type(self).__name__} has no noisy neurons")
        return self.neurons(current, blocks, bias)

    def _event_slots(self) -> list[tuple[dict, str]]:
        """``(module._parameters or module._buffers, name)`` of every tensor the event kernel reads, in its
        argument order: the weights, the biases, the encoder, the readout, the intra-layer weights and masks.
        Looking tensors up through these dicts sees replaced parameters at a fraction of ``getattr``'s cost."""
        slots = [(layer._parameters, "weight") for layer in self.layers]
        slots += [(layer._parameters, "bias") for layer in self.layers]
        readout = self._readout_synapses()
        slots += [(self.encoder._parameters, "mean"), (self.encoder._parameters, "std")]
        slots += [(readout._parameters, "weight"), (readout._parameters, "bias")]
        if self.intra is not None:
            intra = self.intra
            slots += [(intra._parameters, "bias"), (intra._buffers, "bias_mask")]
            if intra.has_weights:
                slots += [(intra._parameters, "weight"), (intra._buffers, "weight_mask")]
        return slots

    def _event_arrays(self) -> tuple:
        """Arguments of :func:`event_kernels.spiking_actor_forward` up to the readout decay: NumPy views that
        share memory with the parameters, so no write can make them stale. They are rebuilt only when a tensor
        was replaced or moved (its data pointer changed); a tensor that cannot be viewed in the kernel's layout
        is copied, and then on every call."""
        if self._event_views is None:
            self._event_views = ((), (), self._event_slots())
        key, arguments, slots = self._event_views
        tensors = [table[name] for table, name in slots]
        pointers = tuple(t.data_ptr() for t in tensors)
        if pointers == key:
            return arguments
        live = True

        def view(tensor: torch.Tensor) -> np.ndarray:
            nonlocal live
            array = tensor.detach().numpy()
            if not array.flags.c_contiguous:
                live = False
                array = np.ascontiguousarray(array)
            return array

        layers = len(self.layers)
        weights_t = tuple(view(w.t()) for w in tensors[:layers])
        biases = tuple(view(b) for b in tensors[layers : 2 * layers])
        mean, std, readout_weight, readout_bias = (view(t) for t in tensors[2 * layers : 2 * layers + 4])
        intra = [view(t) for t in tensors[2 * layers + 4 :]]
        if len(intra) < 2:  # no intra-layer bias
            intra[:0] = [np.zeros_like(biases[-1])] * 2
        if len(intra) < 4:  # no recurrent blocks
            intra += [_NO_BLOCKS, _NO_BLOCKS]
        arguments = (mean, std, weights_t, biases, *intra, readout_weight, readout_bias)
        self._event_views = (pointers if live else (), arguments, slots)
        return arguments

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, "_event_views": None}  # views into this process's memory: rebuilt on first use

    def _forward_event_driven(self, obs: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``[B, M]`` from the compiled event-driven kernel (inference only)."""
        mean, std, weights_t, biases, *intra, readout_weight, readout_bias = self._event_arrays()
        decay, decode = self._event_decode()
        steps, batch = self.timesteps, obs.shape[0]
        records = tuple(np.empty((steps, batch, width), np.float32) for width in self.layer_widths)
        actions = np.empty((batch, self.act_dim), np.float32)
        event_kernels.spiking_actor_forward(
            obs.numpy(), mean, std, ENCODER_THRESHOLD_F32, weights_t, biases, *intra,
            *self.neurons.params.kernel_constants(np.float32), readout_weight, readout_bias, np.float32(decay),
            DECODE_CODES[decode], records, actions,
        )  # fmt: skip
        self._last_spikes = list(records)  # NumPy arrays; activity() reads either kind
        return torch.from_numpy(actions)

    def _use_event_driven(self, obs: torch.Tensor) -> bool:
        return (
            self.event_driven
            and obs.shape[0] <= EVENT_DRIVEN_MAX_BATCH
            and not torch.is_grad_enabled()
            and obs.device.type == "cpu"
            and obs.dtype == torch.float32
            and self.encoder.spike_mode == "deterministic"
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.check_obs(obs)
        if self._use_event_driven(obs):
            return self._forward_event_driven(obs)
        return self.decode(self.output_spikes(obs))

    @abc.abstractmethod
    def decode(self, spikes: torch.Tensor) -> torch.Tensor:
        """Action pre-activations ``[B, M]`` from output-population spikes ``[T, B, M * P]``."""

    @abc.abstractmethod
    def _readout_synapses(self) -> GroupedLinear:
        """The synapses from the output populations to the per-action readout."""

    @abc.abstractmethod
    def _event_decode(self) -> tuple[float, str]:
        """``(readout decay, decode mode)`` for :func:`event_kernels.spiking_actor_forward`."""

    def activity(self) -> ActivityReport:
        if not self._last_spikes:
            raise RuntimeError("activity() needs a forward pass first")
        batch = self._last_spikes[0].shape[1]
        rates = {name: float(s.mean()) for name, s in zip(self.layer_names, self._last_spikes)}
        counts = [float(s.sum()) / batch for s in self._last_spikes]  # spikes per action, per layer
        sops = sum(count * layer.out_features for count, layer in zip(counts, self.layers))
        intra_fan_out = self.intra.fan_out() if self.intra is not None else 0
        sops += counts[-1] * (intra_fan_out + self._readout_fan_out())
        return ActivityReport(
            firing_rates=rates, sops=sops, macs=float(self.encoder.num_neurons + self._decoder_macs())
        )

    def _readout_fan_out(self) -> int:
        """Spike-driven synapses from each output neuron to the decoder (0 for a rate decoder)."""
        return 0

    def _decoder_macs(self) -> int:
        """Real-valued multiply-accumulates in the decoder."""
        return 0


class PopSAN(SpikingActor):
    """PopSAN (Tang et al., CoRL 2020): firing rates of each output population -> grouped linear decoder."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, config, connections="none")
        self.decoder = GroupedLinear(act_dim, config.decoder_pop)

    def decode(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.decoder(spikes.mean(0))

    def _readout_synapses(self) -> GroupedLinear:
        return self.decoder

    def _event_decode(self) -> tuple[float, str]:
        return 1.0, "rate"

    def _decoder_macs(self) -> int:
        return self.act_dim * self.decoder_pop


class ILCSAN(SpikingActor):
    """ILC-SAN (Chen et al., TNNLS 2024): intra-layer connections in the output populations and one
    non-spiking readout neuron per action whose membrane voltage is the action pre-activation."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, config, connections=config.connections)
        self.readout_synapses = GroupedLinear(act_dim, config.decoder_pop)
        self.readout = NonSpikingReadout(config.readout_decay, config.readout)

    def decode(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.readout(self.readout_synapses(spikes))

    def _readout_synapses(self) -> GroupedLinear:
        return self.readout_synapses

    def _event_decode(self) -> tuple[float, str]:
        return self.readout.decay, self.readout.mode

    def _readout_fan_out(self) -> int:
        return 1
