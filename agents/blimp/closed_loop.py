"""Closed-loop fitness for the evolved blimp SNN (docs/blimp.md, "Closed-loop fitness").

Instead of imitating recorded PD / I commands open loop, every individual flies the MuJoCo blimp: the evolving
network (plus an optional fixed partner network, e.g. the evolved SNN-PD when the I net evolves) commands the
thruster from the measured error, and the loss is what the closed-loop comparison reports::

    loss = MAE(h_ref, h) over the flight + w_s * mean over holds of MAE(h_ref, h) in the hold's last 10 s
           + w_o * mean over steps of the overshoot + w_f * servo flips per minute                            (m)

The second term is the paper's steady-state error, weighted by ``w_s`` (``fitness.steady_state_weight``); the
overshoot (``fitness.overshoot_weight``, the largest excursion past the new set-point in the step's direction) and
the servo flips (``fitness.flip_weight``, a flip being a sign change of the thrust direction) penalise the ringing
that MAE + steady-state error alone tolerate. Flights (``fitness.flights``) follow the I-training protocol
(``i-training``: 50 s set-points with the net weight ΔW ~ U(-r, r) N redrawn per set-point, ``data.net_weight``),
so the buoyancy offsets an integral term must remove are in every flight, or fly the negatively buoyant blimp of
paper-full with one ΔW offset for the whole flight (``pair-training``), so that a step's overshoot is the
controller's own. Scenario ``k`` is
the same flight (plan, sensor noise) for every individual; the test flight is a longer held-out scenario. One env
per individual steps in lockstep and the population's networks are stepped as one batch
(:class:`agents.blimp.snn.SNNPopulation`).
"""

from __future__ import annotations

import numpy as np
import torch

from agents.blimp.pid import PIDGains, PIDPopulation
from agents.blimp.snn import SNNArchitecture, SNNPopulation
from envs.blimp.env import BlimpAltitudeEnv
from envs.blimp.profiles import i_training, pair_training

STEADY_WINDOW_S = 10.0  # s, the steady-state error window at the end of each hold
FLIGHTS = {"i-training": i_training, "pair-training": pair_training}  # fitness.flights: ΔW per set-point / flight
TEST_SEED_OFFSET = 1_000_003


def flight_loss(
    z: np.ndarray,
    reference: np.ndarray,
    holds: list[tuple[int, int]],
    window: int,
    steady_weight: float = 1.0,
    overshoot_weight: float = 0.0,
    flips_per_minute: np.ndarray | None = None,
    flip_weight: float = 0.0,
) -> np.ndarray:
    """Tracking MAE + ``steady_weight`` x mean steady-state error + ``overshoot_weight`` x mean overshoot per step
    (m) + ``flip_weight`` x ``flips_per_minute``, per individual ``[P]``.

    Args:
        z: true altitudes ``[T, P]``, m.
        reference: set-points ``[T]``, m.
        holds: ``(start, end)`` tick ranges of the constant set-points.
        window: ticks at the end of each hold that count as steady state.
        flips_per_minute: servo flips per minute of flight ``[P]`` (needed when ``flip_weight > 0``).
    """
    error = np.abs(reference[:, None] - z)
    steady = [error[max(start, end - window) : end].mean(0) for start, end in holds if end > start]
    loss = error.mean(0) + steady_weight * (np.mean(steady, axis=0) if steady else 0.0)
    if overshoot_weight:
        overshoots = []
        for (previous, _), (start, end) in zip(holds[:-1], holds[1:]):
            delta = reference[start] - reference[previous]
            if end > start and delta != 0:
                excursion = np.sign(delta) * (z[start:end] - reference[start])
                overshoots.append(np.maximum(excursion.max(0), 0.0))
        if overshoots:
            loss = loss + overshoot_weight * np.mean(overshoots, axis=0)
    if flip_weight:
        if flips_per_minute is None:
            raise ValueError("flip_weight > 0 needs flips_per_minute")
        loss = loss + flip_weight * np.asarray(flips_per_minute, dtype=np.float64)
    return loss


class ClosedLoopEvaluator:
    """Closed-loop losses of a batch of genomes on training scenario ``k`` (seed ``seed + k``) or on the test
    flight.

    Args:
        architecture: the evolving network's shape.
        partner: ``(architecture, genome [D'])`` of a fixed network whose command is added; ``(architecture, None)``
            when the partner is co-evolved: each genome then holds the partner's after its own, ``[D + D']``; the
            gains of a fixed float :class:`~agents.blimp.pid.PID` partner (e.g. the PID's exact I term); or ``None``
            (no partner).
        flight_s: length of a training flight, s (50 s per set-point).
        test_s: length of the test flight, s.
        seed: scenario seed.
        net_weight: half-range of the per-set-point net weight ΔW, N.
        steady_weight, overshoot_weight, flip_weight: weights of the loss terms (:func:`flight_loss`).
        flights: ``i-training`` (ΔW redrawn per set-point) or ``pair-training`` (one ΔW per flight).
        test_flights: held-out test flights (seeds ``seed + TEST_SEED_OFFSET + k``); the test loss is their mean.
    """

    def __init__(
        self,
        architecture: SNNArchitecture,
        partner: tuple[SNNArchitecture, np.ndarray | None] | PIDGains | None,
        flight_s: float,
        test_s: float,
        seed: int,
        net_weight: float,
        steady_weight: float = 1.0,
        overshoot_weight: float = 0.0,
        flip_weight: float = 0.0,
        flights: str = "i-training",
        test_flights: int = 1,
    ) -> None:
        if flights not in FLIGHTS:
            raise ValueError(f"unknown closed-loop flights {flights!r}; valid: {', '.join(FLIGHTS)}")
        self.arch = architecture
        self.partner = partner
        self.flight_s, self.test_s = flight_s, test_s
        self.seed, self.net_weight, self.steady_weight = seed, net_weight, steady_weight
        self.overshoot_weight, self.flip_weight = overshoot_weight, flip_weight
        self.flights = FLIGHTS[flights]
        self.test_flights = test_flights
        self.envs: list[BlimpAltitudeEnv] = []

    def _env(self, index: int) -> BlimpAltitudeEnv:
        while len(self.envs) <= index:
            self.envs.append(BlimpAltitudeEnv(terminate_on_contact=False))
        return self.envs[index]

    def evaluate(self, genomes: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Losses ``[P]`` (m) and encoding/hidden firing rates ``[P]`` on scenario ``window``, or for ``None`` their
        means over the ``test_flights`` held-out test flights."""
        genomes = np.atleast_2d(genomes)
        if window is not None:
            return self._fly(genomes, self.seed + window, self.flight_s)
        flights = [self._fly(genomes, self.seed + TEST_SEED_OFFSET + k, self.test_s) for k in range(self.test_flights)]
        return tuple(np.mean(parts, axis=0) for parts in zip(*flights))  # type: ignore[return-value]

    def _fly(self, genomes: np.ndarray, seed: int, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        population = len(genomes)
        envs = [self._env(i) for i in range(population)]
        plan = self.flights(np.random.default_rng(seed), envs[0].params.control_dt, seconds, net_weight=self.net_weight)
        observations = np.array([env.reset(seed=seed, options={"plan": plan})[0][0] for env in envs])
        partner: SNNPopulation | PIDPopulation | None = None
        if isinstance(self.partner, PIDGains):
            partner = PIDPopulation(self.partner, population)
        elif self.partner is not None:
            partner_arch, partner_genome = self.partner
            if partner_genome is None:  # co-evolved: the partner's genome follows the network's own
                genomes, partner_genomes = genomes[:, : self.arch.size], genomes[:, self.arch.size :]
            else:
                partner_genomes = np.repeat(partner_genome[None, :], population, axis=0)
            partner = SNNPopulation(partner_arch, partner_genomes)
        network = SNNPopulation(self.arch, genomes)
        max_command = envs[0].params.max_command
        ticks = len(plan.reference)
        z = np.empty((ticks, population))
        for t in range(ticks):
            error = torch.from_numpy(observations)
            command = network.step(error)
            if partner is not None:
                command = command + partner.step(error)
            actions = (command.numpy() / max_command).clip(-1.0, 1.0)
            for i, env in enumerate(envs):
                observation, _, _, _, info = env.step(actions[i : i + 1])
                observations[i] = observation[0]
                z[t, i] = info["z"]
        window_ticks = round(STEADY_WINDOW_S / envs[0].params.control_dt)
        minutes = ticks * envs[0].params.control_dt / 60.0
        flips = np.array([env.thruster.flips for env in envs], dtype=np.float64) / minutes
        losses = flight_loss(z, plan.reference, list(plan.holds), window_ticks, self.steady_weight,
                             self.overshoot_weight, flips, self.flip_weight)  # fmt: skip
        rates = network.firing_rates()
        return losses, rates["encoding"].numpy(), rates["hidden"].numpy()
