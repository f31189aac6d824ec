"""Fidelity of an integer policy against its float policy: per-step action error on recorded observations and
closed-loop MuJoCo returns on the same episode seeds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from agents.actors import ActorNetwork
from agents.export.quantization import actions_from_q15, observations_to_q16
from agents.export.reference import IntegerStep
from envs import make_vec_env
from envs.normalization import ObservationStats
from experiments.evaluation import RolloutStats

IntegerExecutor = Callable[[np.ndarray], IntegerStep]  # Q16.16 observations [B, N] -> IntegerStep


@dataclass
class EpisodeResults(RolloutStats):
    """Closed-loop returns of one policy, and (optionally) every raw observation it saw."""

    observations: list[np.ndarray] = field(default_factory=list)


def float_actions(actor: ActorNetwork, stats: ObservationStats | None, raw_obs: np.ndarray) -> np.ndarray:
    """``tanh(actor(normalise(obs)))`` in ``[-1, 1]``, shape ``[B, M]`` (the deterministic float policy)."""
    obs = stats.normalize(raw_obs) if stats is not None else raw_obs.astype(np.float32)
    with torch.no_grad():
        return torch.tanh(actor(torch.as_tensor(obs, dtype=torch.float32))).numpy()


def float_step_ns(actor: ActorNetwork, stats: ObservationStats | None, raw_obs: np.ndarray, repeats: int = 5) -> float:
    """Nanoseconds per batch-1 float action (normalise + actor + tanh) over ``raw_obs``, best of ``repeats``
    passes: the baseline of the C step latency, measured the same way in the same run."""
    float_actions(actor, stats, raw_obs[:1])  # warm-up (compiles the event-driven kernels)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for row in raw_obs:
            float_actions(actor, stats, row[None])
        best = min(best, (time.perf_counter_ns() - start) / len(raw_obs))
    return best


def run_episodes(
    env_id: str,
    policy: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
    record: bool = False,
    desc: str = "episodes",
) -> EpisodeResults:
    """Run ``episodes`` episodes; ``policy`` maps raw observations ``[1, N]`` to env actions ``[1, M]``.

    The environment is seeded once with ``seed``, so episode ``i`` starts from the same state for every policy.
    """
    env = make_vec_env(env_id, 1, seed, normalize_obs=False)
    results = EpisodeResults()
    obs = env.reset()
    with tqdm(total=episodes, desc=desc, leave=False, disable=None) as bar:
        while len(results.returns) < episodes:
            if record:
                results.observations.append(obs[0].copy())
            obs, _, dones, infos = env.step(policy(obs))
            if dones[0] and "episode" in infos[0]:
                results.returns.append(float(infos[0]["episode"]["r"]))
                results.lengths.append(int(infos[0]["episode"]["l"]))
                bar.update(1)
    env.close()
    return results


def integer_env_policy(executor: IntegerExecutor, low: np.ndarray, high: np.ndarray):
    """Wrap an integer executor as a raw-observation -> env-action policy."""

    def act(obs: np.ndarray) -> np.ndarray:
        return actions_from_q15(executor(observations_to_q16(obs)).actions, low, high)

    return act


def action_error(
    actor: ActorNetwork, stats: ObservationStats | None, executor: IntegerExecutor, raw_obs: np.ndarray
) -> dict:
    """Integer vs float actions (both in ``[-1, 1]``) on ``raw_obs`` ``[B, N]``, plus activity statistics."""
    reference = float_actions(actor, stats, raw_obs)
    step = executor(observations_to_q16(raw_obs))
    error = np.abs(step.actions / 32767.0 - reference)
    return {
        "observations": int(raw_obs.shape[0]),
        "max_abs_action_error": float(error.max()),
        "mean_abs_action_error": float(error.mean()),
        "p99_abs_action_error": float(np.percentile(error, 99)),
        "fraction_above_1_lsb": float((error > 1.0 / 32767).mean()),
        "saturated_observations": int((step.saturated > 0).sum()),
        "saturated_dimensions": int(step.saturated.sum()),
        "sops_mean": float(step.sops.mean()),
        "sops_p99": float(np.percentile(step.sops, 99)),
        "sops_max": int(step.sops.max()),
        "spikes_per_layer_mean": step.spike_counts.mean(axis=0).tolist(),
    }
