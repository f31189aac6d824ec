"""``train_agent.py traffic`` and ``train_agent.py traffic-eval``: train / evaluate signal controllers.

Examples::

    python train_agent.py traffic --agent mtlight --scenario grid2x2 --backend sumo --episodes 30
    python train_agent.py traffic --agent maxpressure --roadnet roadnet.json --flow flow.json --backend cityflow
    python train_agent.py traffic --config experiments/mtlight_grid.yaml --run-dir runs/mtlight_grid
    python train_agent.py traffic --resume runs/mtlight_grid --episodes 50
    python train_agent.py traffic-eval runs/mtlight_grid --episodes 3 --compare fixedtime maxpressure
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from experiments.config import ConfigError, cli_overrides
from experiments.run_dir import CheckpointError, write_atomic

BASELINES = ("fixedtime", "maxpressure", "advanced_mp")


def add_traffic_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ``traffic`` and ``traffic-eval`` subcommands."""
    train = sub.add_parser("traffic", help="train a traffic-signal controller (or resume a run)")
    train.add_argument("--config", type=Path, help="YAML config (sections scenario, env, agent, train)")
    # names are checked by the config (which lists the valid ones): this module stays importable without the
    # traffic extra, so the rest of the CLI works where SUMO/PettingZoo are not installed
    train.add_argument("--agent", help="controller: fixedtime, maxpressure, advanced_mp, dqn or mtlight")
    train.add_argument(
        "--scenario", help="gridCxR (e.g. grid2x2), a dataset (jinan_3x4, hangzhou_4x4, ...), or a label for --roadnet"
    )
    train.add_argument("--roadnet", type=Path, metavar="FILE", help="your own scenario: CityFlow roadnet JSON")
    train.add_argument("--flow", type=Path, metavar="FILE", help="your own scenario: CityFlow flow JSON")
    train.add_argument(
        "--no-verify-data", action="store_true", help="accept dataset files whose sha256 differs (edited data)"
    )
    train.add_argument("--backend", help="simulator: sumo or cityflow")
    train.add_argument("--episodes", type=int, help="training episodes (baselines: evaluation episodes)")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--data-dir", help="benchmark data directory (default $SPIKERL_TRAFFIC_DATA)")
    train.add_argument("--run-dir", type=Path, help="run directory (default runs/traffic_<scenario>_<agent>_...)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue RUN_DIR from its latest checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a value")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    ev = sub.add_parser("traffic-eval", help="greedy episodes of a traffic run; prints the metrics table")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--episodes", type=int, default=1)
    ev.add_argument("--seed", type=int, default=1000, help="seed of the first evaluation episode")
    ev.add_argument("--checkpoint", choices=("final", "latest"), default="final", help="which model to load")
    ev.add_argument(
        "--compare", nargs="*", default=[], choices=BASELINES, help="also run these baselines (default settings)"
    )


def _traffic_errors(command):
    """Turn simulator failures (SUMO's message, missing CityFlow) into the CLI's one-line user errors."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            from envs.traffic.cityflow_backend import CityFlowUnavailableError
            from envs.traffic.sumo_net import SumoError
        except ModuleNotFoundError as err:
            print(
                f"error: traffic control needs the traffic extra (pip install 'spikerl[traffic]'): {err}",
                file=sys.stderr,
            )
            return 2
        try:
            return command(args)
        except (SumoError, CityFlowUnavailableError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return wrapped


@_traffic_errors
def command_traffic(args: argparse.Namespace) -> int:
    from experiments.traffic_config import TrafficRunConfig
    from experiments.traffic_training import TrafficRunDirectory, train

    if args.resume is not None:
        if (
            args.config or args.agent or args.scenario or args.backend or args.seed is not None or args.set
            or args.roadnet or args.flow
        ):  # fmt: skip
            raise ConfigError("--resume continues a run with its saved config; only --episodes may change")
        run = TrafficRunDirectory(args.resume)
        config = run.load_config()
        if args.episodes is not None:
            config.train.episodes = args.episodes
            run.save_config(config)
        print(f"resuming {run.path} from {run.latest_checkpoint().path.name} to {config.train.episodes} episodes")
        row = train(config, run, resume=True)
    else:
        label = args.scenario or (args.roadnet.stem if args.roadnet else None)
        flags = {
            ("agent", "name"): args.agent,
            ("scenario", "name"): label,
            ("scenario", "roadnet"): args.roadnet and str(args.roadnet.resolve()),
            ("scenario", "flow"): args.flow and str(args.flow.resolve()),
            ("scenario", "verify_sha256"): False if args.no_verify_data else None,
            ("scenario", "data_dir"): args.data_dir,
            ("env", "backend"): args.backend,
            ("train", "episodes"): args.episodes,
            ("train", "seed"): args.seed,
            ("train", "progress_bar"): False if args.no_progress else None,
        }
        overrides = cli_overrides(args.set, flags, TrafficRunConfig)
        config = TrafficRunConfig.load(args.config, overrides)
        path = args.run_dir or Path("runs") / (
            f"traffic_{config.scenario.name}_{config.agent.name}_{config.env.backend}_s{config.train.seed}_"
            f"{time.strftime('%Y%m%d-%H%M%S')}"
        )
        run = TrafficRunDirectory(path)
        with run.claim_new_run():
            print(f"run directory: {run.path}")
            row = train(config, run)
    print(
        f"done: {config.train.episodes} episodes; last episode average travel time "
        f"{row.get('average_travel_time', float('nan')):.1f} s; per-episode metrics in {run.episodes_file}"
    )
    return 0


@_traffic_errors
def command_traffic_eval(args: argparse.Namespace) -> int:
    from agents.traffic.config import LEARNING_AGENTS
    from experiments.traffic_training import TrafficRunDirectory, evaluate, format_metrics_table

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    run = TrafficRunDirectory(args.run_dir)
    config = run.load_config()
    model = None
    if config.agent.name in LEARNING_AGENTS:
        model = run.final_model if args.checkpoint == "final" else run.latest_checkpoint().model
        if args.checkpoint == "final" and not model.is_file():
            raise CheckpointError(f"{model} is missing (training not finished?); use --checkpoint latest")
    results = {config.agent.name: evaluate(config, model, args.episodes, args.seed)}
    for name in args.compare:
        other = config.model_copy(update={"agent": dataclasses.replace(config.agent, name=name)})
        results[name] = evaluate(other, None, args.episodes, args.seed)
    print(
        f"{config.scenario.name} on {config.env.backend}, {config.env.horizon} s, {args.episodes} episode(s) "
        f"from seed {args.seed}"
    )
    print(format_metrics_table(results))
    write_atomic(run.path / "traffic_eval.json", json.dumps(results, indent=2) + "\n")
    return 0


TRAFFIC_COMMANDS = {"traffic": command_traffic, "traffic-eval": command_traffic_eval}
