"""How much a trained MTLight agent relies on its multi-task latent (docs/traffic.md, "Multi-seed MTLight comparison").

Usage::

    python -m experiments.mtlight_latent RUN_DIR [RUN_DIR ...] [--seed 1000] [--out latent.json]

For every trained MTLight run directory, two greedy evaluation episodes on the run's scenario (seed ``--seed``):

1. the agent as trained: every decision's observation history ``[A, K, D]`` is recorded, the latent of every
   decision computed, and the greedy phase compared with the phase chosen when the latent is replaced by its mean
   over the episode (``agreement``: the fraction of decisions, over all intersections, where the two agree);
2. the agent acting with that mean latent throughout (``travel_time_mean_latent``), beside the trained agent's own
   travel time (``travel_time``).

An agent whose decisions and travel time barely change without a state-dependent latent gets its control from the raw
observation alone, which is what its DQN ablation sees. The script prints a Markdown table and, with ``--out``,
writes the values as JSON, keyed by the run directories as given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from agents.traffic import SharedDQNAgent
from agents.traffic.networks import TrafficQModel
from envs.errors import UserError
from experiments.run_dir import write_atomic
from experiments.traffic_training import TrafficRunDirectory, build_env, load_controller, run_episode


class RecordingModel(nn.Module):
    """Passes through to ``model`` and keeps every history batch ``[A, K, D]`` it is called with."""

    def __init__(self, model: TrafficQModel) -> None:
        super().__init__()
        self.model = model
        self.histories: list[torch.Tensor] = []

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.histories.append(history.clone())
        return self.model(history)


class ConstantLatent(nn.Module):
    """Stands in for MTLight's encoder: the same ``latent [S]`` for every history, no task predictions."""

    def __init__(self, latent: torch.Tensor) -> None:
        super().__init__()
        self.latent = latent

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.latent.expand(len(history), -1), {}


def latent_usage(run_dir: Path, seed: int) -> dict[str, float]:
    """The measures of the module docstring for one trained MTLight run directory."""
    run = TrafficRunDirectory(run_dir)
    config = run.load_config()
    if config.agent.name != "mtlight":
        raise UserError(f"{run_dir}: agent {config.agent.name!r} has no multi-task latent (mtlight runs only)")
    env = build_env(config)
    try:
        agent = load_controller(config, run.final_model, env, seed)
        assert isinstance(agent, SharedDQNAgent) and agent.model.encoder is not None
        trained = agent.model
        recorder = RecordingModel(trained)
        agent.model = recorder
        own = run_episode(env, agent, seed, learn=False)
        with torch.no_grad():
            histories = torch.cat(recorder.histories)  # [steps * A, K, D]
            latent, _ = trained.encoder(histories)
            ablated_model = TrafficQModel(trained.q_net, ConstantLatent(latent.mean(dim=0)))
            q_own, _ = trained(histories)
            q_mean, _ = ablated_model(histories)
        agreement = float((q_own.argmax(dim=1) == q_mean.argmax(dim=1)).float().mean())
        agent.model = ablated_model
        ablated = run_episode(env, agent, seed, learn=False)
    finally:
        env.close()
    return {
        "travel_time": own["average_travel_time"],
        "travel_time_mean_latent": ablated["average_travel_time"],
        "agreement": agreement,
        "decisions": len(histories),
    }


def markdown(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| run | travel time (s) | with the mean latent (s) | greedy phase unchanged by the mean latent |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['travel_time']:.1f} | {row['travel_time_mean_latent']:.1f} | "
            f"{100 * row['agreement']:.1f} % of {row['decisions']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="trained MTLight run directories")
    parser.add_argument("--seed", type=int, default=1000, help="evaluation episode seed (default 1000)")
    parser.add_argument("--out", type=Path, help="also write the values as JSON")
    args = parser.parse_args(argv)
    try:
        rows = {str(run): latent_usage(run, args.seed) for run in args.runs}  # paths: run names may repeat
    except UserError as err:  # not a run, not MTLight, its model missing or unreadable
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown(rows))
    if args.out:
        write_atomic(args.out, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
