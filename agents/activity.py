"""Activity and energy accounting of an actor forward pass.

Energy model (45 nm CMOS, Horowitz 2014, as used by the SNN-RL papers): an accumulate (AC, one synaptic
operation triggered by a binary spike) costs 0.9 pJ, a multiply-accumulate (MAC) 4.6 pJ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ENERGY_PER_AC_PJ = 0.9
ENERGY_PER_MAC_PJ = 4.6


@dataclass
class ActivityReport:
    """Per-action activity of one actor forward pass (averaged over the batch).

    Attributes:
        firing_rates: mean spikes per neuron per SNN step, by layer (empty for non-spiking actors).
        sops: synaptic operations (spike-triggered accumulates) per action.
        macs: real-valued multiply-accumulates per action (encoder fields, rate decoders, MLP layers).
    """

    firing_rates: dict[str, float] = field(default_factory=dict)
    sops: float = 0.0
    macs: float = 0.0

    @property
    def energy_pj(self) -> float:
        """Estimated energy per action in picojoules."""
        return self.sops * ENERGY_PER_AC_PJ + self.macs * ENERGY_PER_MAC_PJ

    def to_dict(self) -> dict:
        return {**asdict(self), "energy_pj": self.energy_pj}


def mlp_macs(sizes: list[int]) -> int:
    """MACs of one forward pass through dense layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
