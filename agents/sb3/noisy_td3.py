"""TD3 for NoisySAN: exploration through network noise only, replayed exactly in the actor update (docs/methods.md).

Differences from :class:`agents.sb3.TD3`:

* **No action noise.** After the uniform-random warm-up, each sub-environment acts with the NoisySAN actor
  driven by its own coloured-noise stream (:class:`NoiseStreams` over a :class:`ColouredNoiseTable`): one
  continuous 1/f^beta sequence per noisy neuron per episode, across SNN steps and environment steps.
* **Noise replay at 8 bytes per transition.** The replay buffer stores the noise *key* of each transition
  (episode key and step index, two ``uint32``) instead of the noise itself (``T * L`` floats, ~23 kB on
  HalfCheetah). The actor update regenerates the exact noise of every sampled transition from its key and
  takes ``-Q1(s, pi(s; noise))`` through it.
* **Noise reduction.** The actor loss adds ``k * mean(sigma_a)^2`` with
  ``k = k_max * max(0, R - R_floor) / (R_ceiling - R_floor)``, ``R`` the latest evaluation mean return
  (reported through :meth:`NoisyTD3.report_evaluation`), ``R_ceiling`` per task.
* Target actor, evaluation and ``predict()`` are noise-free.

The update itself is SB3's ``TD3.train``, run unchanged: while it runs, a forward pre-hook on the actor passes
the replayed noise of the batch just sampled to the actor-loss forward (recognised by its observation tensor,
which is the batch's), and an optimizer step pre-hook adds the gradient of the noise-reduction term to
``sigma_a`` before the actor step. Nothing here looks at ``module.training``: the noise is an explicit argument
of the actor's forward.

SB3 extension points used (protected API, hence the SB3 version range in ``pyproject.toml``): the replay
buffer's ``_get_samples``, and the off-policy loop's ``_setup_learn``, ``_sample_action``, ``_store_transition``
and ``_last_obs``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.vec_env import VecNormalize

from agents.actors import NoisySAN
from agents.sb3.algorithms import TD3
from neurons.noise import DEFAULT_TABLE_SIZE, ColouredNoiseTable


class NoisyReplayBufferSamples(NamedTuple):
    """SB3's replay samples (same field names) plus the noise key of each transition (``[B]`` arrays)."""

    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor
    noise_episodes: np.ndarray
    noise_steps: np.ndarray
    discounts: torch.Tensor | None = None  # SB3's n-step field: one-step returns here


class NoiseKeyReplayBuffer(ReplayBuffer):
    """Replay buffer that also stores the exploration-noise key ``(episode, step)`` of every transition.

    Call :meth:`store_noise_keys` before each :meth:`add`; :meth:`sample` returns
    :class:`NoisyReplayBufferSamples` and keeps the latest in :attr:`latest_sample`. It draws its indices
    exactly as SB3's :class:`ReplayBuffer` does, so both return the same batches for the same random state.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("NoiseKeyReplayBuffer does not support optimize_memory_usage")
        super().__init__(
            buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination
        )
        self.noise_episodes = np.zeros((self.buffer_size, self.n_envs), dtype=np.uint32)
        self.noise_steps = np.zeros((self.buffer_size, self.n_envs), dtype=np.uint32)
        self.latest_sample: NoisyReplayBufferSamples | None = None

    def store_noise_keys(self, episodes: np.ndarray, steps: np.ndarray) -> None:
        """Noise keys ``[n_envs]`` of the transitions the next :meth:`add` stores."""
        self.noise_episodes[self.pos] = episodes
        self.noise_steps[self.pos] = steps

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> NoisyReplayBufferSamples:  # type: ignore[override]
        envs = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        not_timeout = 1.0 - self.timeouts[batch_inds, envs]
        data = (
            self._normalize_obs(self.observations[batch_inds, envs], env),
            self.actions[batch_inds, envs],
            self._normalize_obs(self.next_observations[batch_inds, envs], env),
            (self.dones[batch_inds, envs] * not_timeout).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, envs].reshape(-1, 1), env),
        )
        self.latest_sample = NoisyReplayBufferSamples(
            *map(self.to_torch, data), self.noise_episodes[batch_inds, envs], self.noise_steps[batch_inds, envs]
        )
        return self.latest_sample


@dataclass
class NoiseStreams:
    """The noise each sub-environment reads: its episode key and the step index within that episode.

    Episode keys are consecutive integers; :class:`ColouredNoiseTable` hashes them (with the run seed) into
    independent windows.
    """

    episodes: np.ndarray  # [n_envs] uint32
    steps: np.ndarray  # [n_envs] uint32
    next_episode: int

    @classmethod
    def start(cls, n_envs: int) -> NoiseStreams:
        return cls(np.arange(n_envs, dtype=np.uint32), np.zeros(n_envs, dtype=np.uint32), n_envs)

    def advance(self, dones: np.ndarray) -> None:
        """After an environment step: every stream moves one step; finished episodes get a new key."""
        self.steps += 1
        for index in np.flatnonzero(dones):
            self._new_episode(index)

    def restart(self) -> None:
        """All sub-environments were reset: every stream starts a new episode."""
        for index in range(len(self.episodes)):
            self._new_episode(index)

    def _new_episode(self, index: int) -> None:
        self.episodes[index] = self.next_episode
        self.steps[index] = 0
        self.next_episode += 1


class NoisyTD3(TD3):
    """TD3 that explores through NoisySAN's network noise (see module docstring).

    Args:
        noise_beta: spectral exponent of the coloured noise (0 white, 1 pink, 2 brown).
        noise_horizon: environment steps of a typical episode (low-frequency cutoff of the noise).
        noise_table_size: length of the shared noise table (power of two).
        noise_reduction_ceiling: ``R_ceiling``, the return at which ``k = k_max``; ``None`` disables the
            noise-reduction term.
        noise_reduction_floor: ``R_floor``, the return below which ``k = 0``.
        noise_reduction_max: ``k_max``.
        other arguments: as :class:`agents.sb3.TD3` (``action_noise`` must stay ``None``).
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        *,
        noise_beta: float = 1.0,
        noise_horizon: int = 1000,
        noise_table_size: int = DEFAULT_TABLE_SIZE,
        noise_reduction_ceiling: float | None = None,
        noise_reduction_floor: float = 0.0,
        noise_reduction_max: float = 1.0,
        action_noise: ActionNoise | None = None,
        **kwargs: Any,
    ) -> None:
        if action_noise is not None:
            raise ValueError("NoisyTD3 explores through the actor's network noise only; action_noise must be None")
        if noise_reduction_ceiling is not None and noise_reduction_ceiling <= noise_reduction_floor:
            raise ValueError(
                f"noise_reduction_ceiling ({noise_reduction_ceiling}) must exceed the floor ({noise_reduction_floor})"
            )
        self.noise_beta = noise_beta
        self.noise_horizon = noise_horizon
        self.noise_table_size = noise_table_size
        self.noise_reduction_ceiling = noise_reduction_ceiling
        self.noise_reduction_floor = noise_reduction_floor
        self.noise_reduction_max = noise_reduction_max
        self.noise_streams: NoiseStreams | None = None
        self._noise_table: ColouredNoiseTable | None = None
        kwargs.setdefault("replay_buffer_class", NoiseKeyReplayBuffer)
        super().__init__(policy, env, action_noise=None, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.actor.network, NoisySAN):
            raise ValueError(
                f"NoisyTD3 needs the noisysan actor, got {type(self.actor.network).__name__} (use NoisySANPolicy)"
            )
        if not isinstance(self.replay_buffer, NoiseKeyReplayBuffer):
            raise ValueError("NoisyTD3 needs replay_buffer_class=NoiseKeyReplayBuffer")

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_noise_table"]  # rebuilt from the seed on demand

    @property
    def noise_table(self) -> ColouredNoiseTable:
        """The shared coloured-noise table (built on first use from the run seed)."""
        if self._noise_table is None:
            self._noise_table = ColouredNoiseTable(
                self.noise_beta, self.actor.network.timesteps, self.noise_horizon, self.noise_table_size, self.seed or 0
            )
        return self._noise_table

    def exploration_noise(self, episodes: np.ndarray, steps: np.ndarray) -> torch.Tensor:
        """Unit-variance network noise ``[T, B, L]`` of the transitions with keys ``(episodes, steps)``."""
        return self.noise_table.windows(episodes, steps, self.actor.network.noise_width).to(self.device)

    def noise_reduction_coefficient(self) -> float:
        """``k = k_max * max(0, R - R_floor) / (R_ceiling - R_floor)`` (0 before the first evaluation)."""
        if self.noise_reduction_ceiling is None or self.latest_eval_return is None:
            return 0.0
        progress = (self.latest_eval_return - self.noise_reduction_floor) / (
            self.noise_reduction_ceiling - self.noise_reduction_floor
        )
        return self.noise_reduction_max * max(0.0, progress)

    def _setup_learn(self, total_timesteps: int, callback: Any = None, reset_num_timesteps: bool = True, *args: Any):
        resets_env = reset_num_timesteps or self._last_obs is None
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, *args)
        if self.noise_streams is None:
            self.noise_streams = NoiseStreams.start(self.n_envs)
        elif resets_env:  # a resumed run keeps its episode counter, so new episodes get fresh noise
            self.noise_streams.restart()
        return result

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.num_timesteps < learning_starts:  # uniform-random warm-up
            return super()._sample_action(learning_starts, None, n_envs)
        obs = self.policy.obs_to_tensor(self._last_obs)[0]
        noise = self.exploration_noise(self.noise_streams.episodes, self.noise_streams.steps)
        with torch.no_grad():
            scaled_action = self.actor(obs, noise=noise).cpu().numpy()
        return self.policy.unscale_action(scaled_action), scaled_action

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:  # type: ignore[override]
        replay_buffer.store_noise_keys(self.noise_streams.episodes, self.noise_streams.steps)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        self.noise_streams.advance(dones)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's TD3 updates, with the actor loss run through each sample's replayed noise and the
        noise-reduction term ``k * mean(sigma_a)^2`` added to it (see the module docstring). SB3 logs the
        ``-Q1`` part as ``train/actor_loss``; ``k`` is logged as ``noise/reduction_coefficient``."""
        coefficient = self.noise_reduction_coefficient()
        with self._noisy_actor_update(coefficient):
            super().train(gradient_steps, batch_size)
        self.logger.record("noise/reduction_coefficient", coefficient)
        self.logger.record("noise/readout_sigma_mean", self.actor.network.readout_noise_scale.mean().item())

    @contextlib.contextmanager
    def _noisy_actor_update(self, coefficient: float) -> Iterator[None]:
        """Hooks that turn SB3's actor update into NoisySAN's while the context is open."""
        buffer: NoiseKeyReplayBuffer = self.replay_buffer  # type: ignore[assignment]
        sigma = self.actor.network.readout_noise_scale

        def replay_noise(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            batch = buffer.latest_sample
            if batch is not None and args and args[0] is batch.observations and kwargs.get("noise") is None:
                kwargs = {**kwargs, "noise": self.exploration_noise(batch.noise_episodes, batch.noise_steps)}
            return args, kwargs

        def reduce_noise(_optimizer: Any, _args: tuple, _kwargs: dict) -> None:
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(coefficient * sigma.mean() ** 2, sigma)
            sigma.grad = grad if sigma.grad is None else sigma.grad + grad

        handles = [self.actor.register_forward_pre_hook(replay_noise, with_kwargs=True)]
        if coefficient > 0.0:
            handles.append(self.actor.optimizer.register_step_pre_hook(reduce_noise))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            buffer.latest_sample = None
