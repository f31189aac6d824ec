"""Neuron dynamics, encoders, readouts, synapses and surrogate gradients (all multi-step ``[T, B, F]``)."""

from neurons.encoders import PopulationEncoder
from neurons.intra_layer import CONNECTION_MODES, IntraLayerConnections
from neurons.lif import CurrentLIF, LIFParameters, current_lif_scan
from neurons.noise import ColouredNoiseTable
from neurons.noisy import NoisyCurrentLIF, NoisyNonSpikingReadout
from neurons.readout import DECODE_MODES, NonSpikingReadout
from neurons.surrogate import rectangular_surrogate, spike
from neurons.synapses import GroupedLinear

__all__ = [
    "CONNECTION_MODES",
    "ColouredNoiseTable",
    "DECODE_MODES",
    "CurrentLIF",
    "GroupedLinear",
    "IntraLayerConnections",
    "LIFParameters",
    "NoisyCurrentLIF",
    "NoisyNonSpikingReadout",
    "NonSpikingReadout",
    "PopulationEncoder",
    "current_lif_scan",
    "rectangular_surrogate",
    "spike",
]
