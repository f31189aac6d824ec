#!/usr/bin/env python
"""spikerl command line: train, resume and evaluate spiking (and MLP) actors.

Examples::

    python train_agent.py train --algo td3 --actor ilcsan --env Hopper-v5 --timesteps 100000 --seed 0
    python train_agent.py train --config experiments/td3_ilcsan.yaml --env HalfCheetah-v5
    python train_agent.py train --resume runs/Hopper-v5_ilcsan_td3_s0_20261123-120000
    python train_agent.py eval runs/Hopper-v5_ilcsan_td3_s0_20261123-120000 --episodes 10
    python train_agent.py train --framework rllib --algo ppo --actor popsan --env Hopper-v5 --num-env-runners 2
    python train_agent.py export runs/Hopper-v5_ilcsan_td3_s0_20261123-120000 --out exports/hopper --format c,npz,nir
    python train_agent.py traffic --agent mtlight --scenario grid2x2 --backend sumo --episodes 30
    python train_agent.py evolve --config experiments/blimp_pd.yaml
    python train_agent.py eval-blimp --pd runs/blimp_pd --i runs/blimp_i
    python train_agent.py export runs/blimp_pd --add runs/blimp_i --out exports/blimp_pd_i
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # headless: MuJoCo offscreen rendering through EGL

from agents.actors import ACTOR_NAMES  # noqa: E402
from experiments.blimp_cli import BLIMP_COMMANDS, add_blimp_commands  # noqa: E402
from experiments.config import ALGO_NAMES, FRAMEWORKS, ConfigError, RunConfig, cli_overrides, load_config  # noqa: E402
from experiments.run_dir import CheckpointError, RunDirectory, write_atomic  # noqa: E402
from experiments.traffic_cli import TRAFFIC_COMMANDS, add_traffic_commands  # noqa: E402
from experiments.video import RenderingUnavailableError  # noqa: E402

USER_ERRORS = (ValueError, CheckpointError, FileNotFoundError, RenderingUnavailableError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_agent.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an agent (or resume a run)")
    train.add_argument("--config", type=Path, help="YAML config (sections env, actor, algo, train)")
    train.add_argument("--algo", choices=ALGO_NAMES, help="RL algorithm")
    train.add_argument("--actor", choices=ACTOR_NAMES, help="actor network")
    train.add_argument("--env", help="gymnasium environment id, e.g. Hopper-v5")
    train.add_argument("--timesteps", type=int, help="total environment steps")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--run-dir", type=Path, help="run directory (default: runs/<env>_<actor>_<algo>_s<seed>_<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue RUN_DIR from its latest checkpoint")
    train.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--framework", choices=FRAMEWORKS, help="training library (default sb3; rllib: ppo or sac)")
    train.add_argument("--num-env-runners", type=int, help="RLlib sampling processes (0: sample in this process)")

    ev = sub.add_parser("eval", help="deterministic rollouts of a trained run")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=12345, help="seed of the first evaluation episode")
    ev.add_argument("--checkpoint", choices=("final", "latest"), default="final", help="which model to load")
    ev.add_argument("--video", type=Path, help="also record one episode as an animated GIF")

    ex = sub.add_parser(
        "export", help="integer-only export of a spiking actor or an evolved blimp controller (NumPy reference, C99)"
    )
    ex.add_argument("run_dir", type=Path, help="RL run (train) or blimp evolution run (evolve)")
    ex.add_argument("--out", type=Path, required=True, help="output directory for the artefacts and report")
    ex.add_argument("--format", help="comma-separated artefacts: c, npz, nir (default c,npz,nir; blimp: c,npz)")
    ex.add_argument("--qat-steps", type=int, default=0, help="quantisation-aware fine-tuning steps (0: none; RL only)")
    ex.add_argument(
        "--episodes", type=int, help="closed-loop episodes per policy (default 10); blimp: profile repeats (default 1)"
    )
    ex.add_argument("--seed", type=int, help="seed of the first report episode (default 12345; blimp 1000)")
    ex.add_argument(
        "--add", type=Path, action="append", default=[], metavar="RUN_DIR",
        help="blimp only: another evolution run whose command is summed at run time (e.g. the SNN-I to an SNN-PD)",
    )  # fmt: skip
    ex.add_argument("--weight-bits", type=int, choices=(8, 16), default=16, help="blimp only: weight width")
    add_traffic_commands(sub)
    add_blimp_commands(sub)
    return parser


def resolve_train_config(args: argparse.Namespace) -> RunConfig:
    flags = {
        ("algo", "name"): args.algo,
        ("actor", "name"): args.actor,
        ("env", "id"): args.env,
        ("train", "timesteps"): args.timesteps,
        ("train", "seed"): args.seed,
        ("train", "framework"): args.framework,
        ("train", "num_env_runners"): args.num_env_runners,
        ("train", "progress_bar"): False if args.no_progress else None,
    }
    overrides = cli_overrides(args.set, flags)
    return load_config(args.config, overrides)


def command_train(args: argparse.Namespace) -> int:
    from experiments.frameworks import train_function

    if args.resume is not None:
        fixed = (args.config, args.algo, args.actor, args.env, args.framework, args.num_env_runners, *args.set)
        if any(value is not None for value in fixed) or args.seed is not None:
            raise ConfigError("--resume continues a run with its saved config; only --timesteps may change")
        run = RunDirectory(args.resume)
        config = run.load_config()
        if args.timesteps is not None:
            config.train.timesteps = args.timesteps
        print(f"resuming {run.path} from {run.latest_checkpoint().path.name} to {config.train.timesteps} steps")
        model = train_function(config)(config, run, resume=True)
    else:
        config = resolve_train_config(args)
        path = args.run_dir or Path("runs") / (
            f"{config.env.id}_{config.actor.name}_{config.algo.name}_s{config.train.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if (path / "config.yaml").exists():
            raise ConfigError(f"{path} already holds a run; use --resume {path} or another --run-dir")
        run = RunDirectory(path)
        print(f"run directory: {run.path}")
        model = train_function(config)(config, run)
    print(f"done: {model.num_timesteps} steps; evaluations in {run.evaluations_file}")
    return 0


def command_eval(args: argparse.Namespace) -> int:
    from envs import make_vec_env
    from experiments.evaluation import energy_summary, format_report, rollout
    from experiments.frameworks import load_policy

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    run = RunDirectory(args.run_dir)
    config = run.load_config()
    model = load_policy(run, args.checkpoint)
    # the model normalises raw observations itself (statistics saved inside it)
    env = make_vec_env(config.env.id, 1, args.seed, normalize_obs=False)
    stats = rollout(model, env, args.episodes)
    energy = energy_summary(model, stats.activity)
    print(format_report(run.path, stats, energy))
    result = {
        "checkpoint": args.checkpoint,
        "episodes": args.episodes,
        "returns": stats.returns,
        "lengths": stats.lengths,
    }
    result.update(mean_return=stats.mean_return, std_return=stats.std_return, **energy)
    write_atomic(run.path / "eval.json", json.dumps(result, indent=2) + "\n")
    if args.video is not None:
        from experiments.video import record_gif

        frames = record_gif(model, config.env.id, args.video, args.seed)
        print(f"video: {args.video} ({frames} frames)")
    return 0


def command_export(args: argparse.Namespace) -> int:
    from agents.export.blimp_exporter import BLIMP_FORMATS, BlimpExportOptions, export_blimp_runs, run_kind
    from agents.export.exporter import FORMATS, ExportOptions, export_run, parse_formats

    if args.qat_steps < 0 or (args.episodes is not None and args.episodes < 0):
        raise ValueError("--qat-steps and --episodes must be >= 0")
    if run_kind(args.run_dir) == "blimp":
        if args.qat_steps:
            raise ValueError("--qat-steps applies to RL actors only; evolved blimp controllers export as evolved")
        formats = parse_formats(args.format or ",".join(BLIMP_FORMATS))
        episodes = 1 if args.episodes is None else args.episodes
        seed = 1000 if args.seed is None else args.seed
        options = BlimpExportOptions(formats, episodes, seed, args.weight_bits)
        report = export_blimp_runs([args.run_dir, *args.add], args.out, options)
    else:
        if args.add:
            raise ValueError(f"--add sums evolved blimp controllers; {args.run_dir} is an RL run")
        formats = parse_formats(args.format or ",".join(FORMATS))
        episodes = 10 if args.episodes is None else args.episodes
        options = ExportOptions(formats, args.qat_steps, episodes, 12345 if args.seed is None else args.seed)
        report = export_run(args.run_dir, args.out, options)
    print((args.out / "report.md").read_text())
    print(f"artefacts: {', '.join(name for names in report['artefacts'].values() for name in names)} in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {
            "train": command_train,
            "eval": command_eval,
            "export": command_export,
            **TRAFFIC_COMMANDS,
            **BLIMP_COMMANDS,
        }
        return commands[args.command](args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        message = "interrupted: checkpoints already written are kept (train, traffic, evolve: continue with --resume)"
        print(f"\n{message}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
