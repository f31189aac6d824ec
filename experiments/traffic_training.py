"""Train and evaluate traffic-signal controllers; one episode = one simulated horizon of the scenario.

A run directory (:class:`experiments.run_dir.RunDirectory` layout) gets ``config.yaml``, ``metadata.json``,
``episodes.csv`` (one row per episode: travel time, throughput, queue, return, epsilon, losses, wall time),
TensorBoard scalars, atomic per-episode checkpoints (model + replay buffer) and the final ``model.zip``. Baselines
(FixedTime, MaxPressure) do not learn: their "training" episodes are evaluations.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.traffic import LEARNING_AGENTS, SharedDQNAgent, make_controller
from envs.traffic.env import TrafficSignalEnv
from envs.traffic.scenario import Scenario
from experiments.run_dir import PACKAGES, CheckpointError, RunDirectory, write_atomic
from experiments.traffic_config import TrafficRunConfig

METRICS = ("average_travel_time", "throughput", "mean_queue")
TRAFFIC_PACKAGES = ("eclipse-sumo", "libsumo", "pettingzoo", "cityflow")


class TrafficRunDirectory(RunDirectory):
    """A run directory whose config is a :class:`TrafficRunConfig`; ``episodes.csv`` replaces evaluations."""

    parse_config = staticmethod(TrafficRunConfig.from_dict)
    packages = (*PACKAGES, *TRAFFIC_PACKAGES)

    episodes_file = property(lambda self: self.path / "episodes.csv")

    def initialise(self, config: TrafficRunConfig, scenario: Scenario | None = None) -> None:
        """Write the config and metadata; the metadata records the scenario's content hash and the sha256 of every
        file it was read from."""
        if scenario is None:
            super().initialise(config)
        else:
            described = {"name": scenario.name, "fingerprint": scenario.fingerprint(), "files": scenario.sources}
            super().initialise(config, scenario=described)
        self.episodes_file.unlink(missing_ok=True)

    def append_episode(self, row: dict[str, float]) -> None:
        """Record one episode in ``episodes.csv`` (a row of the same episode number is replaced, never doubled)."""
        kept = [old for old in self.read_episodes() if old.get("episode") != str(row["episode"])]
        self.write_episodes([*kept, {key: str(value) for key, value in row.items()}])

    def write_episodes(self, rows: list[dict[str, str]]) -> None:
        """Rewrite ``episodes.csv`` atomically (header: every key, in first-seen order)."""
        if not rows:
            self.episodes_file.unlink(missing_ok=True)
            return
        out = io.StringIO()
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(out, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.episodes_file, out.getvalue())

    def read_episodes(self) -> list[dict[str, str]]:
        if not self.episodes_file.is_file():
            return []
        with self.episodes_file.open() as handle:
            return list(csv.DictReader(handle))


def build_env(config: TrafficRunConfig) -> TrafficSignalEnv:
    """The configured environment; MTLight's crossing indicators are tracked only for MTLight."""
    scenario = config.scenario.build(config.env.horizon)
    return TrafficSignalEnv(scenario, config.env, seed=config.train.seed, indicators=config.agent.multitask)


def run_episode(env: TrafficSignalEnv, controller, seed: int, learn: bool) -> dict[str, float]:
    """One episode; ``learn`` trains a learning agent (epsilon-greedy), otherwise it acts greedily.

    Returns the env metrics plus ``return`` (sum of rewards over agents and steps), ``wall_s`` and ``sim_s``.
    """
    start = time.perf_counter()
    env.reset(seed=seed)
    learning = isinstance(controller, SharedDQNAgent)
    if learning:
        controller.begin_episode(env.observation_matrix())
    else:
        controller.reset()
    agents = env.possible_agents
    total = 0.0
    while env.agents:
        actions = controller.act(explore=learn) if learning else controller.act(env)
        _, rewards, _, _, infos = env.step({agent: int(actions[a]) for a, agent in enumerate(agents)})
        reward = np.array([rewards[agent] for agent in agents], dtype=np.float32)
        total += float(reward.sum())
        if learning:
            next_obs = env.observation_matrix()
            if learn:
                indicators = {
                    key: np.stack([np.asarray(infos[agent][key]) for agent in agents]) for key in infos[agents[0]]
                }
                controller.observe(actions, reward, next_obs, indicators)
            else:
                controller.advance(next_obs)
    result = env.metrics()
    result.update({"return": total, "wall_s": time.perf_counter() - start})
    return result


def train(config: TrafficRunConfig, run: TrafficRunDirectory, resume: bool = False) -> dict[str, float]:
    """Train (or, for baselines, evaluate) for ``config.train.episodes`` episodes; returns the last episode's row."""
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(config.train.num_threads)
    env = build_env(config)
    controller = make_controller(config.agent, env, config.train.seed)
    learning = config.agent.name in LEARNING_AGENTS
    start = 0
    if resume:
        checkpoint = run.latest_checkpoint()
        if learning:
            controller.load(checkpoint.model)
            if checkpoint.replay_buffer.is_file():
                controller.load_replay_buffer(checkpoint.replay_buffer)
        start = checkpoint.timesteps
        run.write_episodes(run.read_episodes()[:start])  # drop rows written after the checkpoint
    else:
        created = not run.path.exists()
        run.initialise(config, env.scenario)
    writer = SummaryWriter(str(run.tensorboard_dir))
    row: dict[str, float] = {}
    bar = tqdm(
        range(start, config.train.episodes),
        initial=start,
        total=config.train.episodes,
        desc=f"{config.agent.name} {config.scenario.name} ({config.env.backend})",
        disable=not config.train.progress_bar,
        unit="episode",
    )
    try:
        for episode in bar:
            epsilon = controller.epsilon if learning else 0.0
            try:
                result = run_episode(env, controller, config.train.seed + episode, learn=learning)
            except Exception:
                if not resume and episode == 0:
                    writer.close()
                    _remove_unfinished(run, created)
                raise
            row = {"episode": episode + 1, **result}
            row["epsilon"] = epsilon
            if learning:
                row.update(controller.end_episode())
            run.append_episode(row)
            for key, value in row.items():
                if key != "episode":
                    writer.add_scalar(f"traffic/{key}", value, episode + 1)
            bar.set_postfix(att=f"{row['average_travel_time']:.1f}", queue=f"{row['mean_queue']:.2f}")
            checkpoint_model = controller if learning else _NoModel()
            run.save_checkpoint(checkpoint_model, episode + 1, config.train.keep_checkpoints, {"episode": episode + 1})
        if learning:
            controller.save(run.final_model)
    finally:
        writer.close()
        env.close()
    return row


def _remove_unfinished(run: TrafficRunDirectory, created: bool) -> None:
    """Remove what a fresh run wrote before its first episode failed, so no run directory without results stays
    behind (the whole directory if this run created it)."""
    if created:
        shutil.rmtree(run.path, ignore_errors=True)
        return
    for path in (run.config_file, run.metadata_file, run.episodes_file):
        path.unlink(missing_ok=True)
    for folder in (run.tensorboard_dir, run.checkpoints_dir):
        shutil.rmtree(folder, ignore_errors=True)


class _NoModel:
    """Checkpoint placeholder for controllers without parameters (keeps resume uniform)."""

    replay_buffer = None

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"")


def evaluate(config: TrafficRunConfig, model_path: Path | None, episodes: int, seed: int) -> list[dict[str, float]]:
    """Greedy episodes (seeds ``seed, seed + 1, ...``) of the configured controller, loaded from ``model_path``."""
    torch.set_num_threads(config.train.num_threads)
    env = build_env(config)
    try:
        controller = load_controller(config, model_path, env, seed)
        return [run_episode(env, controller, seed + k, learn=False) for k in range(episodes)]
    finally:
        env.close()


def load_controller(config: TrafficRunConfig, model_path: Path | None, env: TrafficSignalEnv, seed: int):
    """The configured controller for ``env``; a learning agent gets its weights from ``model_path``."""
    controller = make_controller(config.agent, env, seed)
    if config.agent.name in LEARNING_AGENTS:
        if model_path is None or not model_path.is_file():
            raise CheckpointError(f"model {model_path} is missing")
        controller.load(model_path, weights_only=True)
    return controller


def format_metrics_table(rows: dict[str, list[dict[str, float]]]) -> str:
    """Markdown table: per controller, mean ± std over episodes of travel time, throughput, queue, wall s / sim h."""
    lines = [
        "| controller | average travel time (s) | throughput (veh) | mean queue (veh/lane) | wall s per sim hour |",
        "|---|---|---|---|---|",
    ]
    for label, episodes in rows.items():
        cells = []
        for key in METRICS:
            values = np.array([episode[key] for episode in episodes])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}" if key != "mean_queue" else f"{values.mean():.3f}")
        per_hour = np.mean([e["wall_s"] / max(e["sim_time"], 1.0) * 3600.0 for e in episodes])
        lines.append(f"| {label} | {' | '.join(cells)} | {per_hour:.1f} |")
    return "\n".join(lines)
