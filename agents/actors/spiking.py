"""Population-coded spiking actors: PopSAN (rate decoder) and ILC-SAN (intra-layer connections +
non-spiking readout).

Shared backbone (spec §1), for ``T`` SNN steps per environment step::

    obs [B, N] --PopulationEncoder--> spikes [T, B, N*P_e]
      --Linear+CurrentLIF--> ... hidden layers ... --Linear+CurrentLIF--> output populations [T, B, M*P_d]

Each ``Linear`` runs once on all ``T*B`` rows; only the elementwise membrane scan is sequential (and, for
ILC-SAN, the small block-diagonal recurrence over the output populations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agents.activity import ActivityReport
from agents.actors.base import ActorNetwork
from agents.actors.config import ActorConfig
from neurons import CurrentLIF, GroupedLinear, IntraLayerConnections, NonSpikingReadout, PopulationEncoder


class SpikingActor(ActorNetwork):
    """Encoder + CUBA-LIF backbone ending in ``act_dim`` output populations; subclasses decode them."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig, connections: str = "none") -> None:
        super().__init__(obs_dim, act_dim)
        self.timesteps = config.timesteps
        self.decoder_pop = config.decoder_pop
        low, high = config.encoder_mean_range
        self.encoder = PopulationEncoder(obs_dim, config.encoder_pop, (low, high), config.encoder_std, config.encoder)
        sizes = [self.encoder.num_neurons, *config.hidden_sizes, act_dim * config.decoder_pop]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.neurons = CurrentLIF(config.current_decay, config.voltage_decay, config.threshold, config.surrogate_width)
        self.intra = IntraLayerConnections(act_dim, config.decoder_pop, connections) if connections != "none" else None
        self.layer_names = ["encoder", *[f"hidden{i + 1}" for i in range(len(config.hidden_sizes))], "output"]
        self._last_spikes: list[torch.Tensor] = []

    def output_spikes(self, obs: torch.Tensor) -> torch.Tensor:
        """Output-population spikes ``[T, B, act_dim * decoder_pop]`` for observations ``[B, obs_dim]``."""
        self.check_obs(obs)
        steps, batch = self.timesteps, obs.shape[0]
        spikes = self.encoder(obs, steps)
        record = [spikes.detach()]
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if index == last and self.intra is not None:
                bias = layer.bias + self.intra.masked_bias()
                recurrent = self.intra.blocks() if self.intra.has_weights else None
            else:
                bias, recurrent = layer.bias, None
            current = F.linear(spikes.reshape(steps * batch, -1), layer.weight, bias).view(steps, batch, -1)
            spikes = self.neurons(current, recurrent)
            record.append(spikes.detach())
        self._last_spikes = record
        return spikes

    def activity(self) -> ActivityReport:
        if not self._last_spikes:
            raise RuntimeError("activity() needs a forward pass first")
        batch = self._last_spikes[0].shape[1]
        rates = {name: float(s.mean()) for name, s in zip(self.layer_names, self._last_spikes)}
        counts = [float(s.sum()) / batch for s in self._last_spikes]  # spikes per action, per layer
        sops = sum(count * layer.out_features for count, layer in zip(counts, self.layers))
        intra_fan_out = self.intra.fan_out() if self.intra is not None else 0
        sops += counts[-1] * (intra_fan_out + self._readout_fan_out())
        return ActivityReport(firing_rates=rates, sops=sops, macs=float(self.encoder.num_neurons + self._decoder_macs()))

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

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.output_spikes(obs).mean(0))

    def _decoder_macs(self) -> int:
        return self.act_dim * self.decoder_pop


class ILCSAN(SpikingActor):
    """ILC-SAN (Chen et al., TNNLS 2024): intra-layer connections in the output populations and one
    non-spiking readout neuron per action whose membrane voltage is the action pre-activation."""

    def __init__(self, obs_dim: int, act_dim: int, config: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, config, connections=config.connections)
        self.readout_synapses = GroupedLinear(act_dim, config.decoder_pop)
        self.readout = NonSpikingReadout(config.readout_decay, config.readout)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.readout(self.readout_synapses(self.output_spikes(obs)))

    def _readout_fan_out(self) -> int:
        return 1
