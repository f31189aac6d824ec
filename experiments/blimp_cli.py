"""Blimp subcommands of ``train_agent.py``: ``evolve`` (CMA-ES SNN imitation) and ``eval-blimp`` (closed loop)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.config import ConfigError, cli_overrides


def add_blimp_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``evolve`` and ``eval-blimp`` on the CLI's subparsers."""
    evolve = sub.add_parser("evolve", help="evolve a blimp SNN controller with CMA-ES (or resume a run)")
    evolve.add_argument("--config", type=Path, help="YAML config (sections network, data, evolution)")
    evolve.add_argument(
        "--run-dir", type=Path, help="run directory (default: runs/blimp_<target>_<variant>_s<seed>_<time>)"
    )
    evolve.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue RUN_DIR from its checkpoint")
    evolve.add_argument("--generations", type=int, help="total generations (also extends a resumed run)")
    evolve.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    evolve.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    ev = sub.add_parser("eval-blimp", help="closed-loop comparison of PID, evolved SNN and an RL actor on the blimp")
    ev.add_argument("--pd", type=Path, metavar="RUN_DIR", help="evolution run of the SNN-PD controller")
    ev.add_argument("--i", type=Path, metavar="RUN_DIR", help="evolution run of the SNN-I controller")
    ev.add_argument("--rl", type=Path, metavar="RUN_DIR", help="SB3 run trained on spikerl/BlimpAltitude-v0")
    ev.add_argument("--profiles", default="paper-pd,paper-full,disturb,ramp,sine", help="comma-separated profiles")
    ev.add_argument("--repeats", type=int, default=5, help="episodes per profile (per step for paper-pd)")
    ev.add_argument("--seed", type=int, default=1000, help="seed of the first episode")
    ev.add_argument("--randomize", action="store_true", help="held-out randomised dynamics instead of nominal")
    ev.add_argument("--arms", help="comma-separated arms to fly (default: all the given runs allow)")
    ev.add_argument("--jitter", type=float, default=0.0, metavar="S", help="control-period jitter half-width, s")
    ev.add_argument("--long-ticks", type=float, default=0.0, metavar="P", help="fraction of 0.3 s control periods")
    ev.add_argument("--dropout", type=float, default=0.0, metavar="P", help="fraction of ticks without a new reading")
    ev.add_argument("--out", type=Path, default=Path("docs/results/blimp"), help="output folder (table + plots)")


def command_evolve(args: argparse.Namespace) -> int:
    from experiments.blimp_config import EvolveConfig
    from experiments.blimp_evolution import EvolutionRun, evolve

    if args.generations is not None and args.generations < 0:
        raise ConfigError(f"--generations must be >= 0, got {args.generations}")
    if args.resume is not None:
        if args.config or args.set or args.run_dir:
            raise ConfigError("--resume continues a run with its saved config; only --generations may change")
        run = EvolutionRun(args.resume)
        config = run.load_config()
        generation = run.load_checkpoint().generation
        print(f"resuming {run.path} from generation {generation}")
        if args.no_progress:
            config.evolution.progress_bar = False
        result = evolve(config, run, resume=True, generations=args.generations)
    else:
        flags = {
            ("evolution", "progress_bar"): False if args.no_progress else None,
            ("evolution", "generations"): args.generations,
        }
        overrides = cli_overrides(args.set, flags, EvolveConfig)
        config = EvolveConfig.load(args.config, overrides)
        path = args.run_dir or Path("runs") / (
            f"blimp_{config.data.target}_{config.network.variant}_s{config.evolution.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
        )
        run = EvolutionRun(path)
        with run.claim_new_run():
            print(f"run directory: {run.path}")
            result = evolve(config, run)
    print(
        f"done: {result.generations} generations, best test loss {result.best_test_loss:.4f} "
        f"(generation {result.best_generation}), {result.wall_time_s:.0f} s; best genome in {run.best_file}"
    )
    return 0


def command_eval_blimp(args: argparse.Namespace) -> int:
    from experiments.blimp_eval import build_arms, episodes, evaluation_params, plot_learning_curves, run_comparison

    if args.repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {args.repeats}")
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    only = [a.strip() for a in args.arms.split(",") if a.strip()] if args.arms else None
    try:
        for profile in profiles:
            episodes(profile, 1, args.seed)
        params = evaluation_params(args.jitter, args.long_ticks, args.dropout)
        arms = build_arms(args.pd, args.i, args.rl, only)
    except ValueError as err:  # an unknown profile or arm, an option out of range
        raise ConfigError(str(err)) from err
    suffix = "".join(
        f"_{name}{value:g}" for name, value in (("jitter", args.jitter), ("long", args.long_ticks),
                                                ("dropout", args.dropout)) if value
    )  # fmt: skip
    table = run_comparison(arms, profiles, args.repeats, args.seed, args.randomize, args.out, params, suffix)
    print(table)
    evolved = {name: path for name, path in (("SNN-PD", args.pd), ("SNN-I", args.i)) if path is not None}
    if evolved:
        plot_learning_curves(evolved, args.out / "learning_curves.png")
    print(f"table and plots in {args.out}")
    return 0


BLIMP_COMMANDS = {"evolve": command_evolve, "eval-blimp": command_eval_blimp}
