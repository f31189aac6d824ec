"""Parameter-shared double DQN for traffic-signal control, with MTLight's multi-task latent as an option.

One network serves every intersection (parameter sharing, as in MPLight/CoLight); each agent's transition is a
separate sample. Per decision step, for ``A`` agents:

* action: epsilon-greedy on ``Q(history)`` (epsilon decays linearly per episode);
* storage: ``(history_t [K, D], action, reward * reward_scale, history_{t+1}, aux targets of (t, t+1])``;
* update (``updates_per_step`` times once ``learning_starts`` samples are stored): Huber TD loss against the double
  DQN target ``r + gamma * Q_target(h', argmax_a Q(h', a))`` plus, for MTLight, ``sum_k w_k MSE(pred_k, target_k)``
  over the auxiliary tasks (:mod:`agents.traffic.auxiliary`). Episodes end only by the time limit, so the target
  always bootstraps. The target network is a hard copy every ``target_update`` gradient steps.
"""

from __future__ import annotations

import copy
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.traffic.auxiliary import aux_dims, auxiliary_targets
from agents.traffic.config import TrafficAgentConfig, TrafficAgentError
from agents.traffic.networks import MultiTaskEncoder, TrafficQModel, q_network
from envs.errors import one_line


class ReplayBuffer:
    """Ring buffer of agent transitions with observation histories (float32 NumPy arrays)."""

    def __init__(self, capacity: int, history: int, obs_dim: int, task_dims: dict[str, int]) -> None:
        self.capacity = capacity
        self.history = np.zeros((capacity, history, obs_dim), np.float32)
        self.next_history = np.zeros_like(self.history)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.aux = {task: np.zeros((capacity, dim), np.float32) for task, dim in task_dims.items()}
        self.size = 0
        self.cursor = 0

    def add(self, history, action, reward, next_history, aux: dict[str, np.ndarray]) -> None:
        """Add ``n`` transitions (leading dimension ``n`` on every argument)."""
        n = len(action)
        index = (self.cursor + np.arange(n)) % self.capacity
        self.history[index], self.next_history[index] = history, next_history
        self.action[index], self.reward[index] = action, reward
        for task, values in self.aux.items():
            values[index] = aux[task]
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        index = rng.integers(0, self.size, batch)
        out = {
            "history": self.history[index],
            "next_history": self.next_history[index],
            "action": self.action[index],
            "reward": self.reward[index],
        }
        out.update({f"aux_{task}": values[index] for task, values in self.aux.items()})
        return {key: torch.from_numpy(value) for key, value in out.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        data = {"history": self.history, "next_history": self.next_history, "action": self.action}
        data.update(reward=self.reward, meta=np.array([self.size, self.cursor]))
        data.update({f"aux_{task}": values for task, values in self.aux.items()})
        return data

    def load_arrays(self, data: dict[str, np.ndarray]) -> None:
        for key, target in self.arrays().items():
            if key not in data or data[key].shape != target.shape:
                raise ValueError(f"replay buffer field {key!r} missing or of the wrong shape")
            target[...] = data[key]
        self.size, self.cursor = (int(x) for x in data["meta"])


class SharedDQNAgent:
    """Parameter-shared (MT)DQN over ``A`` intersections; see the module docstring.

    Args:
        config: agent settings (``name`` ``dqn`` or ``mtlight``).
        obs_dim: observation size ``D``; n_actions: green phases; n_exits / max_lanes: aux target sizes.
        seed: seeds torch and the NumPy generator used for exploration and sampling.
    """

    def __init__(
        self, config: TrafficAgentConfig, obs_dim: int, n_actions: int, n_exits: int, max_lanes: int, seed: int = 0
    ) -> None:
        torch.manual_seed(seed)
        self.config = config
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)
        self.history_len = config.history if config.multitask else 1
        all_dims = aux_dims(n_exits, max_lanes)
        self.task_dims = {task: all_dims[task] for task in config.aux_tasks} if config.multitask else {}
        self.weights = dict(zip(config.aux_tasks, config.aux_weights))
        encoder = None
        in_features = obs_dim
        if config.multitask:
            encoder = MultiTaskEncoder(
                obs_dim,
                self.history_len,
                self.task_dims,
                config.shared_latent,
                config.task_latent,
                config.encoder_hidden,
            )
            in_features += encoder.latent_size
        net = q_network(config.q_network, in_features, config.hidden_sizes, n_actions, config.spike_steps)
        self.model = TrafficQModel(net, encoder, detach_latent=not config.td_into_encoder)
        self.target = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.replay_buffer = ReplayBuffer(config.buffer_size, self.history_len, obs_dim, self.task_dims)
        self.episode = 0
        self.gradient_steps = 0
        self.histories: np.ndarray | None = None
        self.losses: dict[str, list[float]] = {}

    # ---- acting --------------------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        c = self.config
        frac = min(1.0, self.episode / max(1, c.epsilon_decay_episodes))
        return c.epsilon_start + frac * (c.epsilon_end - c.epsilon_start)

    def begin_episode(self, obs: np.ndarray) -> None:
        """Start an episode from observations ``[A, D]`` (the history is filled with the first observation)."""
        if not np.all(np.isfinite(obs)):
            raise ValueError("non-finite traffic observation")
        self.histories = np.repeat(obs[:, None, :], self.history_len, axis=1).astype(np.float32)

    def act(self, explore: bool = True) -> np.ndarray:
        """Actions ``[A]`` for the current histories."""
        with torch.no_grad():
            q, _ = self.model(torch.from_numpy(self.histories))
        actions = q.argmax(dim=1).numpy()
        if explore:
            random = self.rng.random(len(actions)) < self.epsilon
            actions = np.where(random, self.rng.integers(0, self.n_actions, len(actions)), actions)
        return actions

    def observe(
        self, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray, indicators: dict[str, np.ndarray]
    ) -> None:
        """Store the step's ``A`` transitions, advance the histories and learn.

        ``indicators``: ``exit_flow [A, E]``, ``leaving_travel_time [A]``, ``queue [A, L]`` from the env infos
        (only read by MTLight, which needs the env's ``indicators`` on).
        """
        previous = self.histories
        next_histories = self.advance(next_obs)
        scaled = np.asarray(rewards, np.float32) * self.config.reward_scale
        aux = {}
        if self.task_dims:
            aux = auxiliary_targets(
                indicators["exit_flow"], indicators["leaving_travel_time"], indicators["queue"], rewards,
                self.config.reward_scale,
            )  # fmt: skip
        self.replay_buffer.add(previous, actions, scaled, next_histories, aux)
        if self.replay_buffer.size >= max(self.config.learning_starts, self.config.batch_size):
            for _ in range(self.config.updates_per_step):
                self.learn()

    def advance(self, next_obs: np.ndarray) -> np.ndarray:
        """Append observations ``[A, D]`` to the histories (dropping the oldest); returns the new histories."""
        if not np.all(np.isfinite(next_obs)):
            raise ValueError("non-finite traffic observation")
        self.histories = np.concatenate([self.histories[:, 1:], next_obs[:, None, :]], axis=1).astype(np.float32)
        return self.histories

    def end_episode(self) -> dict[str, float]:
        """Advance the exploration schedule; returns the mean losses of the episode."""
        self.episode += 1
        means = {key: float(np.mean(values)) for key, values in self.losses.items() if values}
        self.losses = {}
        return means

    # ---- learning ------------------------------------------------------------------------------------------
    def learn(self) -> None:
        c = self.config
        batch = self.replay_buffer.sample(c.batch_size, self.rng)
        q, predictions = self.model(batch["history"])
        q_taken = q.gather(1, batch["action"][:, None]).squeeze(1)
        with torch.no_grad():
            next_online, _ = self.model(batch["next_history"])
            next_target, _ = self.target(batch["next_history"])
            best = next_online.argmax(dim=1, keepdim=True)
            target = batch["reward"] + c.gamma * next_target.gather(1, best).squeeze(1)
        td_loss = F.smooth_l1_loss(q_taken, target)
        loss = td_loss
        self._log("td_loss", td_loss)
        for task, prediction in predictions.items():
            aux_loss = F.mse_loss(prediction, batch[f"aux_{task}"])
            loss = loss + self.weights[task] * aux_loss
            self._log(f"aux_{task}", aux_loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        if self.gradient_steps % c.target_update == 0:
            self.target.load_state_dict(self.model.state_dict())

    def _log(self, key: str, value: torch.Tensor) -> None:
        self.losses.setdefault(key, []).append(float(value.detach()))

    # ---- persistence (duck-typed for experiments.run_dir.RunDirectory.save_checkpoint) ---------------------
    def save(self, path: str | Path) -> None:
        state = {
            "model": self.model.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "episode": self.episode,
            "gradient_steps": self.gradient_steps,
            "rng": self.rng.bit_generator.state,
        }
        torch.save(state, path)

    def load(self, path: str | Path, weights_only: bool = False) -> None:
        """Load a :meth:`save` file (``weights_only``: networks only, for evaluation).

        The file is read with torch's restricted unpickler (tensors, containers, numbers, strings), so a crafted
        checkpoint cannot run code while it is loaded.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state["model"])
            if not weights_only:
                self.target.load_state_dict(state["target"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.episode, self.gradient_steps = int(state["episode"]), int(state["gradient_steps"])
                self.rng.bit_generator.state = state["rng"]
        except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as err:
            raise TrafficAgentError(
                f"{path}: not a readable traffic agent checkpoint for this config: {one_line(err)}"
            ) from err

    def save_replay_buffer(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **self.replay_buffer.arrays())
        Path(path).write_bytes(buffer.getvalue())

    def load_replay_buffer(self, path: str | Path) -> None:
        try:
            with np.load(path) as data:
                self.replay_buffer.load_arrays(dict(data))
        except (OSError, ValueError) as err:
            raise TrafficAgentError(f"{path}: unreadable replay buffer: {err}") from err
