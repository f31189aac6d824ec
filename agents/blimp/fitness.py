"""Fitness of a population of blimp SNN genomes: the :class:`Evaluator` interface that CMA-ES evolution calls
(also met by :class:`agents.blimp.closed_loop.ClosedLoopEvaluator`) and the open-loop imitation fitness
(docs/blimp.md, Evolution)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from agents.blimp.datasets import ImitationData
from agents.blimp.snn import SNNArchitecture, SNNPopulation, imitation_loss


class Evaluator(Protocol):
    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class PopulationEvaluator:
    """Imitation losses of a batch of genomes on one training window or on the test sequence."""

    def __init__(self, architecture: SNNArchitecture, data: ImitationData) -> None:
        self.arch = architecture
        self.data = data

    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Losses ``[P]`` and encoding/hidden firing rates ``[P]`` on window ``window`` (``None``: the test set)."""
        if window is None:
            errors, target = self.data.test_errors, self.data.test_targets
        else:
            errors, target = self.data.train_errors[window], self.data.train_targets[window]
        network = SNNPopulation(self.arch, genomes)
        losses = imitation_loss(network.run(errors), torch.as_tensor(target))
        rates = network.firing_rates()
        return losses.numpy(), rates["encoding"].numpy(), rates["hidden"].numpy()
