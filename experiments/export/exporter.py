"""``train_agent.py export`` for RL runs and policy packages: the run's actor, quantised (optionally after
quantisation-aware fine-tuning), through :func:`experiments.export.pipeline.export_network`, measured by closed-loop
MuJoCo returns and action errors of the integer policy vs the float one. Artefacts: ``c``, ``npz`` and ``nir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.export import c_build
from agents.export.c_codegen import DEFAULT_PREFIX
from agents.export.quantization import ExportError, observations_to_q16, quantize_actor
from experiments.export import fidelity
from experiments.export.pipeline import export_network
from experiments.export.report import energy_estimate
from experiments.run_dir import CheckpointError, RunDirectory, require_trusted

FORMATS = ("c", "npz", "nir")
BENCHMARK_OBSERVATIONS = 2000  # recorded observations replayed by the C latency benchmark


def parse_formats(text: str) -> tuple[str, ...]:
    """``"c,npz"`` -> ``("c", "npz")``; unknown names raise ``ValueError`` listing the valid ones."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ExportError(f"unknown export format(s) {', '.join(unknown) or repr(text)}; valid: {', '.join(FORMATS)}")
    return names


@dataclass
class ExportOptions:
    """What :func:`export_run` produces and measures."""

    formats: tuple[str, ...] = FORMATS
    qat_steps: int = 0
    episodes: int = 10  # closed-loop episodes per policy (0: no rollouts, no action-error set)
    seed: int = 12345
    prefix: str = DEFAULT_PREFIX
    benchmark: bool = True  # time the C step in a C loop


def load_run(run_dir: Path):
    """``(config, model)`` of a finished run or a policy package, with errors naming the missing piece."""
    from experiments.frameworks import load_policy
    from experiments.policy_package import is_package

    run = RunDirectory(run_dir)
    config = run.load_config()
    if not is_package(run.path) and not run.final_model.is_file():
        raise CheckpointError(
            f"{run.final_model} is missing: the run has no final model to export (training not finished?)"
        )
    return config, load_policy(run, "final")


def load_replay_buffer(model, run_dir: Path) -> None:
    """Load the replay buffer of ``run_dir``'s latest checkpoint into ``model`` (for quantisation-aware
    fine-tuning), with errors naming a missing, untrusted or corrupt file."""
    buffer_path = RunDirectory(run_dir).latest_checkpoint().replay_buffer
    if not buffer_path.is_file():
        raise ExportError(f"quantisation-aware fine-tuning samples states from {buffer_path}, which is missing")
    require_trusted(buffer_path)  # a pickle: signed by this user's key or under --trust
    try:
        model.load_replay_buffer(buffer_path)
    except Exception as err:  # pickle, zip, EOF and SB3's assertion on the loaded object alike
        raise ExportError(f"replay buffer {buffer_path} is corrupt: {type(err).__name__}: {err}") from err


def export_run(run_dir: Path, out: Path, options: ExportOptions) -> dict:
    """Quantise (optionally after QAT) the run's actor and export it through :func:`export_network`: the artefacts,
    then closed-loop returns and action errors of the integer policy vs the float one; returns the report."""
    config, model = load_run(run_dir)
    actor = model.actor_network
    stats = getattr(model, "obs_normalization", None)
    space = model.action_space
    float_actor = actor
    qat_info: dict = {}
    if options.qat_steps > 0:
        from agents.export.qat import check_finetunable, finetune_actor

        check_finetunable(model)
        load_replay_buffer(model, run_dir)
        actor, qat_info = finetune_actor(model, options.qat_steps, seed=options.seed)
    policy = quantize_actor(actor, stats, space.low, space.high)
    hidden = list(model.policy.actor_config.get("hidden_sizes", [256, 256]))

    def measure(c_policy, generated, build: Path) -> dict:
        if options.episodes == 0:
            return {}
        measured, recorded = _measure(config.env.id, float_actor, actor, stats, policy, c_policy, options)
        if c_policy is not None and options.benchmark:
            sample = recorded[:BENCHMARK_OBSERVATIONS]
            measured["c_step_ns"] = c_build.benchmark_step(generated, build, observations_to_q16(sample))
            measured["float_actor_step_ns"] = fidelity.float_step_ns(float_actor, stats, sample)
        measured["energy"] = energy_estimate(policy, measured["errors"]["sops_mean"], hidden)
        return measured

    identity = {"run": str(run_dir), "env": config.env.id}
    return export_network(policy, out, options.formats, options.prefix, identity, {"qat": qat_info}, measure)


def _measure(env_id, float_actor, actor, stats, policy, c_policy, options: ExportOptions) -> tuple[dict, np.ndarray]:
    """Closed-loop returns (float, integer NumPy, integer C) on the same seeds and action errors on the
    observations the float policy visited."""
    float_actor.eval()
    low, high = policy.action_low, policy.action_high

    def float_policy(obs: np.ndarray) -> np.ndarray:
        return low + 0.5 * (fidelity.float_actions(float_actor, stats, obs) + 1.0) * (high - low)

    reference = policy.reference()
    float_runs = fidelity.run_episodes(env_id, float_policy, options.episodes, options.seed, True, "float policy")
    int_runs = fidelity.run_episodes(
        env_id, fidelity.integer_env_policy(reference, low, high), options.episodes, options.seed, False, "integer"
    )
    recorded = np.stack(float_runs.observations)
    errors = fidelity.action_error(float_actor, stats, reference, recorded)
    returns = {
        "episodes": options.episodes,
        "seed": options.seed,
        "float_mean": float_runs.mean_return,
        "float_std": float_runs.std_return,
        "float_returns": float_runs.returns,
        "integer_mean": int_runs.mean_return,
        "integer_std": int_runs.std_return,
        "integer_returns": int_runs.returns,
        "ratio": int_runs.mean_return / float_runs.mean_return if float_runs.mean_return else float("nan"),
    }
    if c_policy is not None:
        c_runs = fidelity.run_episodes(
            env_id, fidelity.integer_env_policy(c_policy, low, high), min(2, options.episodes), options.seed, False,
            "integer C",
        )  # fmt: skip
        returns["c_matches_reference"] = c_runs.returns == int_runs.returns[: len(c_runs.returns)]
    if actor is not float_actor:
        returns["qat_float_errors"] = fidelity.action_error(actor, stats, reference, recorded)
    peaks = {name: int(value) for name, value in reference.state_peaks.items()}
    return {"errors": errors, "returns": returns, "observed_state_peaks": peaks}, recorded


__all__ = ["FORMATS", "ExportError", "ExportOptions", "export_run", "load_run", "parse_formats"]
