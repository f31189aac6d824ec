"""spikerl command line: train, resume and evaluate spiking (and MLP) actors.

The sub-commands behind ``train_agent.py`` (the entry point at the repository root, installed as ``spikerl``).

Examples::

    python train_agent.py train --algo td3 --actor ilcsan --env Hopper-v5 --timesteps 100000 --seed 0
    python train_agent.py train --config experiments/td3_ilcsan.yaml --env HalfCheetah-v5
    python train_agent.py train --resume runs/Hopper-v5_ilcsan_td3_s0_20261123-120000
    python train_agent.py eval runs/Hopper-v5_ilcsan_td3_s0_20261123-120000 --episodes 10
    python train_agent.py package runs/Hopper-v5_ilcsan_td3_s0_20261123-120000 --out policies/hopper_ilcsan
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
from envs.errors import UserError  # noqa: E402
from experiments.blimp_cli import BLIMP_COMMANDS, add_blimp_commands  # noqa: E402
from experiments.config import ALGO_NAMES, FRAMEWORKS, ConfigError, RunConfig, cli_overrides  # noqa: E402
from experiments.run_dir import RunDirectory, make_directory, trust_directory, write_atomic  # noqa: E402
from experiments.traffic_cli import TRAFFIC_COMMANDS, add_traffic_commands  # noqa: E402
from experiments.video import RenderingUnavailableError  # noqa: E402

USER_ERRORS = (UserError, RenderingUnavailableError)  # exit 2 with one line; anything else keeps its traceback
TRUST_HELP = "load pickled files (SB3 model.zip, replay buffers) from this run even if not signed with your key"


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
    train.add_argument("--trust", action="store_true", help="with --resume: " + TRUST_HELP)

    ev = sub.add_parser("eval", help="deterministic rollouts of a trained run")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=12345, help="seed of the first evaluation episode")
    ev.add_argument("--checkpoint", choices=("final", "latest"), default="final", help="which model to load")
    ev.add_argument("--video", type=Path, help="also record one episode as an animated GIF")
    ev.add_argument("--trust", action="store_true", help=TRUST_HELP)

    pk = sub.add_parser("package", help="write a run's final policy as a pickle-free package (safe to share)")
    pk.add_argument("run_dir", type=Path)
    pk.add_argument("--out", type=Path, required=True, help="package directory to write")
    pk.add_argument("--episodes", type=int, default=10, help="evaluation episodes recorded on the card (0: none)")
    pk.add_argument("--seed", type=int, default=12345, help="seed of the first recorded episode (as eval's)")
    pk.add_argument("--trust", action="store_true", help=TRUST_HELP)

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
    ex.add_argument(
        "--target", choices=("cortex-m4",),
        help="also build the C as firmware for this MCU, run it under QEMU on 1000 recorded inputs and check it "
        "against the NumPy reference (footprint, instructions per step: firmware.md)",
    )  # fmt: skip
    ex.add_argument("--trust", action="store_true", help=TRUST_HELP)
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
    return RunConfig.load(args.config, overrides)


def command_train(args: argparse.Namespace) -> int:
    from envs import check_training_env
    from experiments.frameworks import train_function

    if args.resume is not None:
        return resume_training(args)
    config = resolve_train_config(args)
    check_training_env(config.env.id, config.algo.name)  # an unknown id or discrete actions: no directory yet
    path = args.run_dir or Path("runs") / (
        f"{config.env.id}_{config.actor.name}_{config.algo.name}_s{config.train.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    )
    run = RunDirectory(path)
    with run.claim_new_run():
        print(f"run directory: {run.path}")
        model = train_function(config)(config, run)
    print(f"done: {model.num_timesteps} steps; evaluations in {run.evaluations_file}")
    return 0


def resume_training(args: argparse.Namespace) -> int:
    """``train --resume RUN [--timesteps N]``: continue from the newest intact checkpoint, or start again from
    step 0 with the saved config if the run failed before its first checkpoint."""
    fixed = (args.config, args.algo, args.actor, args.env, args.framework, args.num_env_runners, *args.set)
    if any(value is not None for value in fixed) or args.seed is not None:
        raise ConfigError("--resume continues a run with its saved config; only --timesteps may change")
    if args.run_dir is not None:
        raise ConfigError(f"--resume continues {args.resume} in place; --run-dir does not apply")
    if args.timesteps is not None and args.timesteps < 1:
        raise ConfigError(f"--timesteps must be >= 1, got {args.timesteps}")
    run = RunDirectory(args.resume)
    run.load_config()  # a run directory (before the lock would create a missing one)
    with run.locked():
        return _resume_locked(args, run)


def _resume_locked(args: argparse.Namespace, run: RunDirectory) -> int:
    from experiments.frameworks import train_function

    config = run.load_config()
    if args.trust:
        trust_directory(run.path)
    if args.timesteps is not None:
        config.train.timesteps = args.timesteps
    if not run.has_checkpoint():
        print(f"{run.path} has no checkpoint yet: starting again from step 0 with its saved config")
        run.discard_progress()
        model = train_function(config)(config, run)
    else:
        checkpoint = run.latest_checkpoint()
        if config.train.timesteps < checkpoint.timesteps:
            raise ConfigError(
                f"--timesteps {config.train.timesteps} is below the {checkpoint.timesteps} steps of "
                f"{checkpoint.path}; give at least that"
            )
        finished = run.finished_steps()
        if finished is not None and finished >= config.train.timesteps:
            print(f"{run.path} already finished at {finished} steps; nothing to do (raise --timesteps to go on)")
            return 0
        run.save_config(config)  # a later plain --resume keeps the new total
        print(f"resuming {run.path} from {checkpoint.path.name} to {config.train.timesteps} steps")
        model = train_function(config)(config, run, resume=True)
    print(f"done: {model.num_timesteps} steps; evaluations in {run.evaluations_file}")
    return 0


def command_eval(args: argparse.Namespace) -> int:
    from envs import make_vec_env
    from experiments.evaluation import energy_summary, format_report, rollout
    from experiments.frameworks import load_policy
    from experiments.policy_package import is_package

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    run = RunDirectory(args.run_dir)
    if args.trust:
        trust_directory(run.path)
    config = run.load_config()
    model = load_policy(run, args.checkpoint)
    # predict takes raw observations (the model normalises them with its own statistics)
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
    if not is_package(run.path):  # a package stays as it was shipped
        write_atomic(run.path / "eval.json", json.dumps(result, indent=2) + "\n")
    if args.video is not None:
        from experiments.video import record_gif

        frames = record_gif(model, config.env.id, args.video, args.seed)
        print(f"video: {args.video} ({frames} frames)")
    return 0


def command_export(args: argparse.Namespace) -> int:
    from experiments.export.blimp_exporter import BLIMP_FORMATS, BlimpExportOptions, export_blimp_runs, run_kind
    from experiments.export.exporter import FORMATS, ExportOptions, export_run, parse_formats

    if args.qat_steps < 0 or (args.episodes is not None and args.episodes < 0):
        raise ConfigError("--qat-steps and --episodes must be >= 0")
    blimp = run_kind(args.run_dir) == "blimp"
    formats = parse_formats(args.format or ",".join(BLIMP_FORMATS if blimp else FORMATS))
    # the firmware links the C artefact; a blimp firmware also reads its quantised controller from the npz
    needed = {"c", "npz"} if blimp else {"c"}
    if args.target and not needed <= set(formats):
        artefacts = " and ".join(sorted(needed)) + (" artefacts" if len(needed) > 1 else " artefact")
        raise ConfigError(f"--target {args.target} needs the {artefacts}; "
                          f"add {','.join(sorted(needed - set(formats)))} to --format")  # fmt: skip
    if args.trust:
        trust_directory(args.run_dir)
    make_directory(args.out, "--out")
    if blimp:
        if args.qat_steps:
            raise ConfigError("--qat-steps applies to RL actors only; evolved blimp controllers export as evolved")
        episodes = 1 if args.episodes is None else args.episodes
        seed = 1000 if args.seed is None else args.seed
        options = BlimpExportOptions(formats, episodes, seed, args.weight_bits)
        report = export_blimp_runs([args.run_dir, *args.add], args.out, options)
    else:
        if args.add:
            raise ConfigError(f"--add sums evolved blimp controllers; {args.run_dir} is an RL run")
        episodes = 10 if args.episodes is None else args.episodes
        options = ExportOptions(formats, args.qat_steps, episodes, 12345 if args.seed is None else args.seed)
        report = export_run(args.run_dir, args.out, options)
    print((args.out / "report.md").read_text())
    print(f"artefacts: {', '.join(name for names in report['artefacts'].values() for name in names)} in {args.out}")
    if args.target:
        from experiments.export.firmware import deploy, format_markdown

        result = deploy(args.out, seed=12345 if args.seed is None else args.seed)
        print(format_markdown(result))
        if not result["bit_exact"]:
            print(f"error: the {args.target} firmware differs from the NumPy reference", file=sys.stderr)
            return 1
    return 0


def command_package(args: argparse.Namespace) -> int:
    from envs import make_vec_env
    from experiments.evaluation import rollout
    from experiments.frameworks import load_policy
    from experiments.policy_package import write_package

    run = RunDirectory(args.run_dir)
    if args.trust:
        trust_directory(run.path)
    config = run.load_config()
    if config.train.framework != "sb3":
        raise ConfigError(f"{run.path} is an RLlib run; packages hold SB3 policies only")
    if args.episodes < 0:
        raise ConfigError(f"--episodes must be >= 0, got {args.episodes}")
    model = load_policy(run, "final")
    evaluation = None
    if args.episodes:
        env = make_vec_env(config.env.id, 1, args.seed, normalize_obs=False)
        stats = rollout(model, env, args.episodes)
        env.close()
        evaluation = {"episodes": args.episodes, "seed": args.seed}
        evaluation.update(mean_return=round(stats.mean_return, 3), std_return=round(stats.std_return, 3))
    commit = run.recorded_commit()
    source = f"packaged from {run.path.name}, {model.num_timesteps} steps"
    write_package(model, config, args.out, source, commit, evaluation)
    returns = f"; return {evaluation['mean_return']:.1f} ± {evaluation['std_return']:.1f}" if evaluation else ""
    print(f"policy package: {args.out} ({model.num_timesteps} steps{returns}; loads without unpickling)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {
            "train": command_train,
            "eval": command_eval,
            "export": command_export,
            "package": command_package,
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
