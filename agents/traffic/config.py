"""Settings of the traffic-signal controllers (section ``agent`` of a traffic run config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.traffic.auxiliary import AUX_TASKS
from envs.errors import UserError

AGENT_NAMES = ("fixedtime", "maxpressure", "advanced_mp", "dqn", "mtlight")
LEARNING_AGENTS = ("dqn", "mtlight")
Q_NETWORKS = ("mlp", "spiking")


class TrafficAgentError(UserError, ValueError):
    """A controller setting or checkpoint that does not fit (the message names it)."""


@dataclass
class TrafficAgentConfig:
    """Controller choice and hyperparameters.

    ``fixedtime`` uses ``green_time``; ``maxpressure`` and ``advanced_mp`` hold a green for at least ``min_green``
    seconds (``advanced_mp`` also uses ``running_weight``, see :mod:`agents.traffic.baselines`); ``dqn`` is the
    parameter-shared double DQN on the raw observation (the ablation); ``mtlight`` adds the multi-task latent over
    the last ``history`` observations. ``q_network: spiking`` replaces the Q-network's hidden layers with CUBA-LIF
    spiking layers run for ``spike_steps`` steps and reads Q-values from non-spiking integrating readout neurons.
    """

    name: str = "mtlight"
    green_time: int = 30  # fixedtime: seconds per green phase
    min_green: int = 0  # maxpressure / advanced_mp: seconds a green is held before it may change
    running_weight: float = 1.0  # advanced_mp: weight of the current phase's effective running vehicles
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    q_network: str = "mlp"
    spike_steps: int = 4
    learning_rate: float = 1e-3
    gamma: float = 0.8
    batch_size: int = 64
    buffer_size: int = 20_000
    learning_starts: int = 500  # agent transitions stored before updates start
    updates_per_step: int = 1  # gradient steps per decision step
    target_update: int = 200  # gradient steps between target-network syncs
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_episodes: int = 10
    reward_scale: float = 0.05
    max_grad_norm: float = 10.0
    history: int = 4  # mtlight: observations in the encoder input
    shared_latent: int = 32
    task_latent: int = 8
    encoder_hidden: int = 128
    aux_tasks: list[str] = field(default_factory=lambda: list(AUX_TASKS))
    aux_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    td_into_encoder: bool = True  # let the TD loss train the encoder too

    def __post_init__(self) -> None:
        if self.name not in AGENT_NAMES:
            raise ValueError(f"agent.name: unknown agent {self.name!r}; valid: {', '.join(AGENT_NAMES)}")
        if self.q_network not in Q_NETWORKS:
            raise ValueError(f"agent.q_network: unknown {self.q_network!r}; valid: {', '.join(Q_NETWORKS)}")
        unknown = [task for task in self.aux_tasks if task not in AUX_TASKS]
        if unknown:
            raise ValueError(f"agent.aux_tasks: unknown task(s) {unknown}; valid: {', '.join(AUX_TASKS)}")
        if len(self.aux_weights) != len(self.aux_tasks):
            raise ValueError(
                f"agent.aux_weights has {len(self.aux_weights)} entries for {len(self.aux_tasks)} aux_tasks"
            )
        if self.name == "mtlight" and not self.aux_tasks:
            raise ValueError("agent.aux_tasks: mtlight needs at least one auxiliary task")
        for key in ("batch_size", "buffer_size", "target_update", "history", "spike_steps", "green_time"):
            if getattr(self, key) < 1:
                raise ValueError(f"agent.{key} must be >= 1, got {getattr(self, key)}")
        if self.min_green < 0:
            raise ValueError(f"agent.min_green must be >= 0, got {self.min_green}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"agent.gamma must be in [0, 1), got {self.gamma}")

    @property
    def multitask(self) -> bool:
        return self.name == "mtlight"
