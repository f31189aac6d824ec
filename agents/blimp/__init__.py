"""Blimp altitude controllers: the deployed PID, the evolved SNN (PD and I networks), the hand-set integrating
SNN-I, its genomes, open-loop imitation and closed-loop fitness, imitation datasets flown in the MuJoCo blimp, and
closed-loop rollouts. The CMA-ES evolution runs and their configs are :mod:`experiments.blimp_evolution` and
:mod:`experiments.blimp_config`."""

from agents.blimp.controllers import Controller, Flight, SNNController, SummedController, fly
from agents.blimp.integrator import integrator_genome
from agents.blimp.pid import DEPLOYED_GAINS, PID, PIDGains
from agents.blimp.snn import HIDDEN_VARIANTS, SNNArchitecture, SNNPopulation, imitation_loss

__all__ = [
    "DEPLOYED_GAINS",
    "HIDDEN_VARIANTS",
    "PID",
    "Controller",
    "Flight",
    "PIDGains",
    "SNNArchitecture",
    "SNNController",
    "SNNPopulation",
    "SummedController",
    "fly",
    "imitation_loss",
    "integrator_genome",
]
