"""Shared test helpers: tiny configs and the command line called in-process (``python train_agent.py ARGS``).

Test modules import this module, never ``conftest`` (which pytest loads by itself for its fixtures)."""

from __future__ import annotations

import train_agent

TINY_ACTOR = {"hidden_sizes": [32, 32], "timesteps": 3, "encoder_pop": 4, "decoder_pop": 4}  # seconds-long actors


def run_cli(*args: object) -> int:
    """``train_agent.main`` on ``args`` (paths and numbers converted to strings); returns the exit code."""
    return train_agent.main([str(a) for a in args])


def tiny_td3_overrides(snn_steps: int, every: int, eval_episodes: int) -> list[str]:
    """``--set`` flags for a seconds-long TD3 run: hidden 32-32, ``snn_steps`` SNN steps, learning after 100
    steps, evaluation and checkpoint every ``every`` steps."""
    values = {
        "actor.hidden_sizes": "[32, 32]",
        "actor.timesteps": snn_steps,
        "algo.learning_starts": 100,
        "algo.batch_size": 32,
        "algo.gradient_steps": 10,
        "train.eval_freq": every,
        "train.eval_episodes": eval_episodes,
        "train.checkpoint_freq": every,
    }
    return [flag for key, value in values.items() for flag in ("--set", f"{key}={value}")] + ["--no-progress"]
