"""Record an episode through MuJoCo offscreen rendering into an animated GIF."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm


class RenderingUnavailableError(RuntimeError):
    """No OpenGL backend is available for MuJoCo offscreen rendering."""


def record_gif(model: BaseAlgorithm, env_id: str, path: Path, seed: int, max_steps: int = 1000, fps: int = 30) -> int:
    """Roll out one deterministic episode, save it as a GIF at ``path`` and return the frame count."""
    from PIL import Image

    env = gym.make(env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        try:
            first = env.render()
        except Exception as err:  # mujoco raises various GL errors when no backend exists
            raise RenderingUnavailableError(
                f"MuJoCo offscreen rendering failed ({type(err).__name__}: {err}). Install an OpenGL backend "
                "(e.g. apt-get install libegl1 or libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa."
            ) from err
        frames = [first]
        for _ in range(max_steps):
            action, _ = model.predict(obs[None], deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action[0])
            frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    images = [Image.fromarray(np.asarray(frame)) for frame in frames[::2]]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(2000 / fps), loop=0)
    return len(images)
