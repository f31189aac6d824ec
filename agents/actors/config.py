"""Configuration of an actor network (one dataclass for every actor kind)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from neurons.encoders import SPIKE_MODES
from neurons.intra_layer import CONNECTION_MODES
from neurons.lif import LIFParameters
from neurons.readout import DECODE_MODES

ACTOR_NAMES = ("mlp", "popsan", "ilcsan", "noisysan")


@dataclass
class ActorConfig:
    """Actor network hyperparameters. Defaults are the papers' (docs/methods.md, Backbone and ILC-SAN).

    ``mlp`` uses only ``name`` and ``hidden_sizes``; the spiking fields apply to ``popsan``, ``ilcsan`` and
    ``noisysan``; ``connections``, ``readout`` and ``readout_decay`` apply to ``ilcsan`` and ``noisysan``;
    ``noise_scale`` (``sigma_init``, docs/methods.md, NoisySAN) applies to ``noisysan``.
    """

    name: str = "ilcsan"
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    timesteps: int = 5  # T, SNN steps per environment step
    encoder_pop: int = 10  # P_e, encoder neurons per observation dimension
    decoder_pop: int = 10  # P_d, output-population neurons per action dimension
    encoder: str = "deterministic"  # spike generation: deterministic | bernoulli
    encoder_mean_range: list[float] = field(default_factory=lambda: [-3.0, 3.0])
    encoder_std: float = math.sqrt(0.15)
    # CUBA-LIF constants of every spiking layer (defaults: neurons.lif.LIFParameters)
    current_decay: float = LIFParameters.current_decay
    voltage_decay: float = LIFParameters.voltage_decay
    threshold: float = LIFParameters.threshold
    surrogate_width: float = LIFParameters.surrogate_width
    connections: str = "full"  # intra-layer connections: full | self | lateral | bias | none
    readout: str = "last"  # non-spiking readout decode: last | mean | max-abs
    readout_decay: float = 1.0
    noise_scale: float = 0.5  # sigma_init: a layer of n neurons gets noise of scale sigma_init / sqrt(n)

    def __post_init__(self) -> None:
        choices = {
            "name": ACTOR_NAMES,
            "encoder": SPIKE_MODES,
            "connections": CONNECTION_MODES,
            "readout": DECODE_MODES,
        }
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ValueError(f"actor.{key}: unknown value {getattr(self, key)!r}; valid: {', '.join(valid)}")
        for key in ("timesteps", "encoder_pop", "decoder_pop"):
            if getattr(self, key) < 1:
                raise ValueError(f"actor.{key} must be >= 1, got {getattr(self, key)}")
        try:
            _ = self.lif_parameters  # validates the neuron constants
        except ValueError as err:
            raise ValueError(f"actor.{err}") from None
        if self.noise_scale < 0:
            raise ValueError(f"actor.noise_scale must be >= 0, got {self.noise_scale}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"actor.hidden_sizes must be a non-empty list of positive sizes, got {self.hidden_sizes}")
        if len(self.encoder_mean_range) != 2 or self.encoder_mean_range[0] >= self.encoder_mean_range[1]:
            raise ValueError(
                f"actor.encoder_mean_range must be [low, high] with low < high, got {self.encoder_mean_range}"
            )

    @property
    def lif_parameters(self) -> LIFParameters:
        """The neuron constants of the spiking layers."""
        return LIFParameters(self.current_decay, self.voltage_decay, self.threshold, self.surrogate_width)

    @property
    def spiking(self) -> bool:
        return self.name != "mlp"
