"""Run an experiment suite as Ray Tune trials, then aggregate it.

Usage::

    python -m experiments.run experiments/smoke.yaml [--ray-address ADDR] [--only env=Hopper-v5 ...]
    python -m experiments.run experiments/cpu_budget.yaml --aggregate-only

Each trial is one training run of the CLI (SB3, or RLlib for ``framework: rllib``) in its own run directory
``<out>/<env>_<actor>_<algo>_s<seed>[_rllib]``. Trials are idempotent, which is what makes a suite
resumable: a finished run (``DONE`` at the requested steps) is only summarised, an interrupted run
continues from its latest checkpoint, and a run directory with a different config is refused by name.
After training each trial re-runs ``rerun_episodes`` single episodes of the final model and records firing
rates and energy in ``summary.json``. A failing trial is reported and does not stop the others; the exit
code is 1 if any failed. Runs locally by default; ``--ray-address`` joins an existing Ray cluster (whose
nodes must have spikerl installed and share the ``out`` path). The suite's own trial directories are trusted:
their pickled checkpoints are loaded whether signed or not (the suite's ``out`` is the user's own output).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.errors import UserError
from experiments.config import ConfigError
from experiments.run_dir import RunDirectory, trust_directory, write_atomic
from experiments.suites import GRID_KEYS, Suite, Trial, load_suite

RERUN_SEED_OFFSET = 20_000
IGNORED_CONFIG_KEYS = {("train", "timesteps"), ("train", "progress_bar")}  # may differ on resume


def _config_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    keys = []
    for section in sorted(set(stored) | set(wanted)):
        a, b = stored.get(section, {}), wanted.get(section, {})
        for key in sorted(set(a) | set(b)):
            if (section, key) not in IGNORED_CONFIG_KEYS and a.get(key) != b.get(key):
                keys.append(f"{section}.{key} ({a.get(key)!r} != {b.get(key)!r})")
    return keys


def train_trial(trial: Trial) -> str:
    """Bring the trial's run directory to its step budget; return what was done (trained/resumed/finished)."""
    from experiments.frameworks import train_function

    config = trial.run_config()
    config.train.progress_bar = False
    run = RunDirectory(trial.run_dir, trial.command)
    trust_directory(run.path)
    with run.locked():
        if run.config_file.is_file():
            differences = _config_differences(run.load_config().to_dict(), config.to_dict())
            if differences:
                raise ConfigError(f"{run.path} holds a run with another config: {'; '.join(differences)}")
            finished = run.finished_steps()
            if finished is not None and finished >= config.train.timesteps:
                return "finished"
            if run.has_checkpoint():
                run.save_config(config)  # the suite's step budget, kept by later resumes
                train_function(config)(config, run, resume=True)
                return "resumed"
            run.discard_progress()  # started but never checkpointed: start over
        train_function(config)(config, run)
        return "trained"


def summarise_trial(trial: Trial, episodes: int) -> dict[str, Any]:
    """Re-run ``episodes`` single episodes of the final model; write and return ``summary.json``."""
    from envs import make_vec_env
    from experiments.evaluation import energy_summary, rollout
    from experiments.frameworks import load_policy

    run = RunDirectory(trial.run_dir, trial.command)
    trust_directory(run.path)
    summary_file = run.path / "summary.json"
    steps = run.finished_steps()
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        if summary.get("timesteps") == steps and len(summary.get("rerun_returns", [])) == episodes:
            return summary
    policy = load_policy(run, "final")
    env = make_vec_env(trial.env, 1, trial.seed + RERUN_SEED_OFFSET, normalize_obs=False)
    stats = rollout(policy, env, max(episodes, 1))
    env.close()
    summary = {
        "timesteps": steps,
        "rerun_returns": stats.returns[:episodes],
        "energy": energy_summary(policy, stats.activity),
    }
    write_atomic(summary_file, json.dumps(summary, indent=2) + "\n")
    return summary


def execute_trial(spec: dict[str, Any], rerun_episodes: int) -> dict[str, Any]:
    """Train (or resume, or skip) and summarise one trial; the metrics reported to Ray Tune."""
    trial = Trial(**spec)
    status = train_trial(trial)
    summary = summarise_trial(trial, rerun_episodes)
    return {"status": status, "timesteps": summary["timesteps"], "rerun_returns": summary["rerun_returns"]}


def _tune_trainable(params: dict[str, Any]) -> None:
    import ray
    from ray import tune

    node = ray.get_runtime_context().get_node_id()
    tune.report({**execute_trial(params["trial"], params["rerun_episodes"]), "node": node})


@dataclass
class TrialOutcome:
    trial: Trial
    error: str | None = None
    status: str | None = None
    node: str | None = None  # Ray node id the trial ran on


def _trial_log():
    """A Ray Tune callback printing one line when a trial starts, finishes or fails."""
    from ray import tune

    class TrialLog(tune.Callback):
        def _say(self, trial, what: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {Path(trial.config['trial']['run_dir']).name}: {what}", flush=True)

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self._say(trial, "started")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._say(trial, (trial.last_result or {}).get("status", "done"))

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._say(trial, "FAILED")

    return TrialLog()


def run_trials(suite: Suite, trials: list[Trial], address: str | None = None) -> list[TrialOutcome]:
    """Run ``trials`` as a Ray Tune grid (``max_concurrent`` at once, ``cpus_per_trial`` each)."""
    from ray import tune

    from experiments.rllib_training import init_ray

    init_ray(address)
    by_dir = {t.run_dir: t for t in trials}
    storage = (suite.out / "tune").resolve()
    tuner = tune.Tuner(
        tune.with_resources(_tune_trainable, {"cpu": suite.cpus_per_trial}),
        param_space={
            "trial": tune.grid_search([dataclasses.asdict(t) for t in trials]),
            "rerun_episodes": suite.rerun_episodes,
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=suite.max_concurrent, reuse_actors=False),
        run_config=tune.RunConfig(
            name=suite.name,
            storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[_trial_log()],
            verbose=0,
        ),
    )
    outcomes = []
    for result in tuner.fit():
        trial = by_dir[result.config["trial"]["run_dir"]]
        if result.error is not None:
            cause = getattr(result.error, "cause", None) or result.error  # the trial's own exception
            outcomes.append(TrialOutcome(trial, error=f"{type(cause).__name__}: {cause}"))
        else:
            metrics = result.metrics or {}
            outcomes.append(TrialOutcome(trial, status=metrics.get("status", "interrupted"), node=metrics.get("node")))
    return sorted(outcomes, key=lambda o: o.trial.run_dir)


def finished_run_dirs(trials: list[Trial]) -> tuple[list[Path], list[Trial]]:
    """Run directories that finished training (and have evaluations), and the trials that did not."""
    done, missing = [], []
    for trial in trials:
        run = RunDirectory(trial.run_dir)
        if (run.path / "DONE").is_file() and run.evaluations_file.is_file():
            done.append(run.path)
        else:
            missing.append(trial)
    return done, missing


def parse_only(items: list[str]) -> dict[str, list[str]]:
    only: dict[str, list[str]] = {}
    for item in items:
        key, _, values = item.partition("=")
        if key not in GRID_KEYS or not values:
            raise ConfigError(f"--only {item!r} must look like KEY=V1,V2 with KEY one of {', '.join(GRID_KEYS)}")
        only[key] = values.split(",")
    return only


def trial_command(suite_file: Path, trial: Trial) -> str:
    """The command that runs ``trial`` alone (its run's provenance; a Ray worker's own command line says nothing)."""
    only = " ".join(f"--only {key}={getattr(trial, key)}" for key in GRID_KEYS)
    return f"python -m experiments.run {suite_file} {only}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.split("\n")[0])
    parser.add_argument("suite", type=Path, help="suite YAML (experiments/smoke.yaml, cpu_budget.yaml, ...)")
    parser.add_argument("--ray-address", help="join this Ray cluster (e.g. auto or ray://host:10001)")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2", help="restrict the grid")
    parser.add_argument("--aggregate-only", action="store_true", help="only aggregate finished runs")
    parser.add_argument(
        "--readme", type=Path, default=Path("docs/results.md"), help="page whose results block the suite updates"
    )
    args = parser.parse_args(argv)
    try:
        from experiments.aggregate import aggregate

        suite = load_suite(args.suite)
        selected = suite.trials(parse_only(args.only))
        trials = [dataclasses.replace(t, command=trial_command(args.suite, t)) for t in selected]
        failed: list[TrialOutcome] = []
        if not args.aggregate_only:
            print(f"suite {suite.name}: {len(trials)} trial(s), up to {suite.max_concurrent} at once -> {suite.out}")
            outcomes = run_trials(suite, trials, args.ray_address)
            for outcome in outcomes:
                where = f" on node {outcome.node[:12]}" if outcome.node else ""
                print(f"  {outcome.trial.name}: {outcome.status or 'FAILED: ' + str(outcome.error)}{where}")
            failed = [o for o in outcomes if o.error]
        done, missing = finished_run_dirs(trials)
        for trial in missing:
            print(f"  not finished: {trial.name}")
        if done:
            readme = args.readme if suite.readme else None
            title = f"{suite.name} suite"
            print(aggregate(done, suite.results, suite.baseline, title, readme))
            print(f"results: {suite.results}/results.md, results.csv, <env>.png")
        if failed:
            print(f"error: {len(failed)} trial(s) failed: {', '.join(o.trial.name for o in failed)}", file=sys.stderr)
            return 1
        return 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
