"""Blimp altitude controllers: the deployed PID, the evolved SNN (PD and I networks), the hand-set integrating
SNN-I, CMA-ES evolution by open-loop imitation or closed-loop fitness, imitation datasets flown in the MuJoCo
blimp, and closed-loop rollouts."""

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
