"""Deterministic rollouts of a trained model with return, activity and energy statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from agents.activity import ENERGY_PER_MAC_PJ, ActivityReport, mlp_macs
from agents.actors import SpikingActor
from agents.sb3 import SpikingAlgorithmMixin


@dataclass
class RolloutStats:
    """Per-episode returns/lengths and per-action activity averaged over every step."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    activity: ActivityReport = field(default_factory=ActivityReport)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))


def rollout(model: SpikingAlgorithmMixin, env: VecEnv, episodes: int, deterministic: bool = True) -> RolloutStats:
    """Run ``episodes`` complete episodes on ``env`` (one sub-environment wrapped in ``Monitor``)."""
    network = model.actor_network
    stats = RolloutStats()
    rates: dict[str, float] = {}
    sops = macs = 0.0
    steps = 0
    obs = env.reset()
    while len(stats.returns) < episodes:
        action, _ = model.predict(obs, deterministic=deterministic)
        report = network.activity()
        steps += 1
        sops += report.sops
        macs += report.macs
        for name, rate in report.firing_rates.items():
            rates[name] = rates.get(name, 0.0) + rate
        obs, _, dones, infos = env.step(action)
        for done, info in zip(dones, infos):
            if done and "episode" in info:
                stats.returns.append(float(info["episode"]["r"]))
                stats.lengths.append(int(info["episode"]["l"]))
    stats.activity = ActivityReport({k: v / steps for k, v in rates.items()}, sops / steps, macs / steps)
    return stats


def evaluation_row(timesteps: int, stats: RolloutStats, wall_time_s: float) -> dict[str, Any]:
    """One ``evaluations.csv`` row (see :data:`experiments.run_dir.EVALUATION_FIELDS`)."""
    return {
        "timesteps": timesteps,
        "mean_return": round(stats.mean_return, 3),
        "std_return": round(stats.std_return, 3),
        "mean_length": round(float(np.mean(stats.lengths)), 1),
        "sops_per_action": round(stats.activity.sops, 1),
        "wall_time_s": round(wall_time_s, 1),
    }


def evaluation_scalars(stats: RolloutStats) -> dict[str, float]:
    """TensorBoard scalars of an evaluation: returns, episode length, SOPs, energy, per-layer firing rates."""
    scalars = {
        "eval/mean_return": stats.mean_return,
        "eval/std_return": stats.std_return,
        "eval/mean_length": float(np.mean(stats.lengths)),
        "snn/sops_per_action": stats.activity.sops,
        "snn/energy_pj_per_action": stats.activity.energy_pj,
    }
    scalars.update({f"snn/firing_rate/{layer}": rate for layer, rate in stats.activity.firing_rates.items()})
    return scalars


def energy_summary(model: SpikingAlgorithmMixin, activity: ActivityReport) -> dict[str, Any]:
    """Energy per action of the actor vs a dense MLP actor of the same hidden sizes (all MACs).

    ``model`` is anything with ``actor_network`` and ``actor_config`` (SB3 algorithms, :class:`RLlibPolicy`).
    """
    network = model.actor_network
    hidden = model.actor_config.get("hidden_sizes", [256, 256])
    baseline_macs = mlp_macs([network.obs_dim, *hidden, network.act_dim])
    baseline_pj = baseline_macs * ENERGY_PER_MAC_PJ
    return {
        "spiking": isinstance(network, SpikingActor),
        "firing_rates": activity.firing_rates,
        "sops_per_action": activity.sops,
        "macs_per_action": activity.macs,
        "energy_pj_per_action": activity.energy_pj,
        "mlp_macs_per_action": baseline_macs,
        "mlp_energy_pj_per_action": baseline_pj,
        "energy_ratio_vs_mlp": activity.energy_pj / baseline_pj,
    }


def format_report(run: Path, stats: RolloutStats, energy: dict[str, Any]) -> str:
    lines = [
        f"run: {run}",
        f"episodes: {len(stats.returns)}   return: {stats.mean_return:.1f} ± {stats.std_return:.1f}"
        f"   (min {min(stats.returns):.1f}, max {max(stats.returns):.1f}, mean length {np.mean(stats.lengths):.0f})",
    ]
    if energy["firing_rates"]:
        rates = "  ".join(f"{name} {rate:.3f}" for name, rate in energy["firing_rates"].items())
        lines.append(f"firing rates (spikes/neuron/step): {rates}")
        lines.append(
            f"synaptic ops per action: {energy['sops_per_action']:.0f}   real MACs: {energy['macs_per_action']:.0f}"
        )
    lines.append(
        f"energy per action (45 nm, 0.9 pJ/AC, 4.6 pJ/MAC): {energy['energy_pj_per_action'] / 1e3:.1f} nJ"
        f" vs MLP actor {energy['mlp_energy_pj_per_action'] / 1e3:.1f} nJ ({energy['mlp_macs_per_action']} MACs)"
        f" -> {energy['energy_ratio_vs_mlp']:.3f}x"
    )
    return "\n".join(lines)
