"""MTLight auxiliary (supervised) targets built from the simulator indicators of one decision interval.

For the observation history ending at decision step ``t`` the targets describe the interval ``(t, t+1]``:

========== ======================================================= =====================================
task       target                                                  shape / scaling
========== ======================================================= =====================================
flow       distribution of crossing vehicles over the exit roads    ``[E]``, counts / total (0 if none)
travel     mean approach time of the vehicles that crossed          ``[1]``, seconds / 100
queue      halting vehicles per incoming lane at ``t+1``             ``[max_lanes]``, / 10
reward     the reward received at ``t+1``                           ``[1]``, times ``reward_scale``
========== ======================================================= =====================================

Each task is regressed with a mean-squared error; their weights are configurable (``agent.aux_weights``).
"""

from __future__ import annotations

import numpy as np

AUX_TASKS = ("flow", "travel", "queue", "reward")
TRAVEL_SCALE = 100.0
QUEUE_SCALE = 10.0


def aux_dims(n_exits: int, max_lanes: int) -> dict[str, int]:
    """Output size of every task."""
    return {"flow": n_exits, "travel": 1, "queue": max_lanes, "reward": 1}


def auxiliary_targets(
    exit_flow: np.ndarray, travel_time: np.ndarray, queue: np.ndarray, reward: np.ndarray, reward_scale: float
) -> dict[str, np.ndarray]:
    """Targets for ``A`` agents.

    Args:
        exit_flow: ``[A, E]`` vehicles that crossed into each exit road during the interval.
        travel_time: ``[A]`` mean approach time (s) of those vehicles (0 if none).
        queue: ``[A, L]`` halting vehicles per incoming lane at the end of the interval.
        reward: ``[A]`` environment reward at the end of the interval.
        reward_scale: factor applied to the reward (the same one the TD target uses).

    Returns:
        ``{task: [A, dim]}`` float32 arrays, see the module table.
    """
    total = exit_flow.sum(axis=1, keepdims=True)
    return {
        "flow": (exit_flow / np.maximum(total, 1.0)).astype(np.float32),
        "travel": (np.asarray(travel_time, dtype=np.float32) / TRAVEL_SCALE)[:, None],
        "queue": (queue / QUEUE_SCALE).astype(np.float32),
        "reward": (np.asarray(reward, dtype=np.float32) * reward_scale)[:, None],
    }
