"""``train_agent.py export`` for evolved blimp controllers: evolution run(s) -> integer controller, through
:func:`experiments.export.pipeline.export_network`.

One run exports its best genome; ``--add`` runs are summed at run time (SNN-PD + SNN-I, as
:class:`agents.blimp.controllers.SummedController`). Artefacts: ``c`` and ``npz`` (``controller.npz``); the report
has flash/RAM, SOPs per control tick,
command error integer vs float on the errors of closed-loop float flights, and closed-loop metrics
(:mod:`experiments.blimp_metrics`) of the integer vs the float controller on the same profile and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from agents.blimp.controllers import Controller, Flight, SNNController, SummedController, fly
from agents.export.blimp_codegen import DEFAULT_BLIMP_PREFIX
from agents.export.blimp_quantization import IntegerBlimpController, quantize_network
from agents.export.blimp_reference import IntegerController, command_from_q16, error_to_q16
from agents.export.quantization import ExportError
from experiments.blimp_config import EvolveConfig
from experiments.blimp_evolution import EvolutionRun
from experiments.config import config_sections
from experiments.export.pipeline import export_network
from experiments.export.report import bounds_rows, footprint_rows, table_row
from experiments.run_dir import CheckpointError

BLIMP_FORMATS = ("c", "npz")
BLIMP_SECTIONS = tuple(config_sections(EvolveConfig))  # network, data, evolution
HEADLINE_METRICS = ("rmse_cm", "sse_cm", "sse_signed_cm", "overshoot_up_cm", "overshoot_down_cm",
                    "limit_cycle_p2p_cm", "flips", "spikes_per_s_hidden", "sops_per_s")  # fmt: skip


def run_kind(run_dir: Path) -> str:
    """``"blimp"`` for an evolution run (``config.yaml`` with sections network/data/evolution), ``"rl"`` otherwise
    when ``config.yaml`` exists; raises :class:`CheckpointError` naming what is missing."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise CheckpointError(
            f"{run_dir} is neither an RL run (config.yaml + model.zip) nor a blimp evolution run (config.yaml with "
            f"sections {'/'.join(BLIMP_SECTIONS)} + best.npz): config.yaml is missing"
        )
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as err:
        raise CheckpointError(f"{config}: unreadable config: {err}") from err
    if isinstance(data, dict) and set(BLIMP_SECTIONS) & set(data):
        if not (run_dir / "best.npz").is_file():
            raise CheckpointError(
                f"{run_dir} is a blimp evolution run but best.npz is missing (no genome has been tested yet)"
            )
        return "blimp"
    return "rl"


@dataclass
class BlimpExportOptions:
    """What :func:`export_blimp_runs` produces and measures."""

    formats: tuple[str, ...] = BLIMP_FORMATS
    repeats: int = 1  # closed-loop repeats of the profile per controller (paper-pd: each of its 5 steps)
    seed: int = 1000
    weight_bits: int = 16
    prefix: str = DEFAULT_BLIMP_PREFIX


def _load(run_dirs: list[Path], weight_bits: int) -> tuple[IntegerBlimpController, Controller, list[str]]:
    """Integer controller, float controller and data targets of the runs (summed in order)."""
    networks, floats, targets = [], [], []
    for run_dir in run_dirs:
        if run_kind(run_dir) != "blimp":
            raise ExportError(f"{run_dir} is not a blimp evolution run; --add sums evolved blimp controllers only")
        run = EvolutionRun(run_dir)
        config = run.load_config()
        genome = run.load_best_genome()
        name = config.data.target if config.data.target not in targets else f"{config.data.target}{len(targets)}"
        networks.append(quantize_network(config.network.architecture(), genome, name, weight_bits))
        floats.append(SNNController(config.network.architecture(), genome))
        targets.append(name)
    float_controller = floats[0] if len(floats) == 1 else SummedController(*floats)
    return IntegerBlimpController(networks, weight_bits), float_controller, targets


def profile_for(targets: list[str]) -> str:
    """``paper-full`` (negative buoyancy) when an I network is included, else ``paper-pd``."""
    return "paper-full" if len(targets) > 1 or any(t.startswith("i") for t in targets) else "paper-pd"


def command_errors(controller: IntegerBlimpController, flights: list[Flight]) -> dict:
    """Integer vs float command (code units) on the errors of ``flights`` (each replayed from power-on)."""
    reference = controller.reference()
    errors, sops, saturated = [], [], 0
    for flight in flights:
        reference.reset()
        trace = reference.run(error_to_q16(flight["error"]))
        errors.append(np.abs(command_from_q16(trace.commands) - flight["command"]))
        sops.append(trace.sops)
        saturated += int(trace.saturated.sum())
    error, sop = np.concatenate(errors), np.concatenate(sops)
    return {
        "ticks": int(error.size),
        "max_abs_command_error": float(error.max()),
        "mean_abs_command_error": float(error.mean()),
        "p99_abs_command_error": float(np.percentile(error, 99)),
        "float_command_abs_mean": float(np.mean(np.abs(np.concatenate([f["command"] for f in flights])))),
        "saturated_errors": saturated,
        "sops_mean": float(sop.mean()),
        "sops_max": int(sop.max()),
        "state_peaks": {name: int(value) for name, value in reference.state_peaks.items()},
    }


def _metrics(flights: list[Flight]) -> dict[str, dict[str, float]]:
    from experiments.blimp_metrics import METRIC_NAMES, flight_metrics

    values = [flight_metrics(f) for f in flights]
    out = {}
    for name in METRIC_NAMES:
        finite = [v[name] for v in values if np.isfinite(v[name])]
        out[name] = {"mean": float(np.mean(finite)) if finite else float("nan"),
                     "std": float(np.std(finite)) if finite else float("nan")}  # fmt: skip
    return out


def export_blimp_runs(run_dirs: list[Path], out: Path, options: BlimpExportOptions) -> dict:
    """Quantise the runs' best genomes (summed), write artefacts, measure fidelity; returns the report."""
    from envs.blimp.env import BlimpAltitudeEnv
    from experiments.blimp_eval import episodes

    unknown = [f for f in options.formats if f not in BLIMP_FORMATS]
    if unknown:
        raise ExportError(f"format(s) {', '.join(unknown)} not available for blimp controllers (soft reset and "
                         f"threshold adaptation have no NIR primitive); valid: {', '.join(BLIMP_FORMATS)}")  # fmt: skip
    if options.repeats < 0:
        raise ExportError(f"closed-loop repeats must be >= 0, got {options.repeats}")
    controller, float_controller, targets = _load(run_dirs, options.weight_bits)
    profile = profile_for(targets)

    def measure(c_executor, generated, build: Path) -> dict:
        if options.repeats == 0:
            return {}
        env = BlimpAltitudeEnv(terminate_on_contact=False)
        plan = episodes(profile, options.repeats, options.seed)
        integer = IntegerController(controller.reference())
        float_flights = [fly(env, float_controller, seed, opts) for seed, opts in plan]
        int_flights = [fly(env, integer, seed, opts) for seed, opts in plan]
        other_bits = 8 if options.weight_bits == 16 else 16
        other, _, _ = _load(run_dirs, other_bits)
        measured = {
            "errors": command_errors(controller, float_flights),
            "errors_other_weight_bits": {"weight_bits": other_bits, **command_errors(other, float_flights)},
            "closed_loop": {"episodes": len(plan), "seed": options.seed,
                            "float": _metrics(float_flights), "integer": _metrics(int_flights)},
        }  # fmt: skip
        if c_executor is not None:
            c_controller = IntegerController(c_executor)
            seed, opts = plan[0]
            c_flight = fly(env, c_controller, seed, opts)
            integer_first = fly(env, integer, seed, opts)
            measured["closed_loop"]["c_matches_reference"] = bool(
                c_controller.commands_q == integer.commands_q and np.array_equal(c_flight["z"], integer_first["z"])
            )
        return measured

    identity = {"runs": [str(path) for path in run_dirs], "controller": "+".join(targets)}
    return export_network(controller, out, options.formats, options.prefix, identity, {"profile": profile}, measure,
                          format_blimp_markdown)  # fmt: skip


def format_blimp_markdown(report: dict) -> str:
    """Human-readable summary of a blimp export ``report``."""
    spec = report["spec"]
    nets = ", ".join(f"{n['name']} ({n['variant']}, {n['hidden']} hidden)" for n in spec["networks"])
    lines = [
        f"# Integer export report: blimp controller {report['controller']}",
        "",
        f"Runs {', '.join(report['runs'])}; networks {nets}, summed. int{spec['weight_bits']} weights, int32 states, "
        f"H = {spec['headroom_bits']}, decays Q{spec['decay_bits']}, IWTA traces Q{spec['trace_bits']}; error "
        f"{spec['error_format']}, command {spec['command_format']}. Model hash `{report['model_hash']}`.",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    if "footprint" in report:
        lines += footprint_rows(report["footprint"])
    if "errors" in report:
        err, other = report["errors"], report["errors_other_weight_bits"]
        lines += [
            table_row("ticks replayed (errors of the float closed-loop flights)", err["ticks"]),
            table_row("max / p99 / mean abs command error (code units)", "{:.4f} / {:.4f} / {:.5f}".format(
                err["max_abs_command_error"], err["p99_abs_command_error"], err["mean_abs_command_error"])),
            table_row("mean abs float command (code units)", f"{err['float_command_abs_mean']:.3f}"),
            table_row(f"same with int{other['weight_bits']} weights: max / mean",
                      f"{other['max_abs_command_error']:.4f} / {other['mean_abs_command_error']:.5f}"),
            table_row("SOPs per control tick mean / max / worst case",
                      f"{err['sops_mean']:.1f} / {err['sops_max']} / {report['sops_worst_case']}"),
            table_row("errors saturated (|e| > clip)", err["saturated_errors"]),
        ]  # fmt: skip
    if "closed_loop" in report:
        loop = report["closed_loop"]
        lines += ["", f"Closed loop, profile `{report['profile']}`, {loop['episodes']} episodes from seed "
                  f"{loop['seed']} (same seeds for both), mean ± std:", "",
                  "| metric | float | integer |", "|---|---|---|"]  # fmt: skip
        for name in HEADLINE_METRICS:
            f, i = loop["float"][name], loop["integer"][name]
            lines.append(f"| {name} | {f['mean']:.2f} ± {f['std']:.2f} | {i['mean']:.2f} ± {i['std']:.2f} |")
        if "c_matches_reference" in loop:
            lines += ["", f"C closed-loop flight identical to the NumPy reference: {loop['c_matches_reference']}"]
    peaks = report.get("errors", {}).get("state_peaks", {})
    caption = "Overflow bounds (proven at export for any number of ticks) and the largest state seen:"
    lines += bounds_rows(report["overflow_bounds"], peaks, caption, ("current", "voltage"))
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


__all__ = ["BLIMP_FORMATS", "BlimpExportOptions", "export_blimp_runs", "run_kind"]
