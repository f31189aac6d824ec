"""``train_agent.py export`` for evolved blimp controllers: evolution run(s) -> integer controller + report.

One run exports its best genome; ``--add`` runs are summed at run time (SNN-PD + SNN-I, as
:class:`agents.blimp.controllers.SummedController`). Artefacts: ``controller.npz`` + ``spec.json`` (``npz``),
``<prefix>.c`` / ``.h`` (``c``), and always ``report.json`` / ``report.md``: flash/RAM, SOPs per control tick,
command error integer vs float on the errors of closed-loop float flights, and closed-loop metrics
(:mod:`experiments.blimp_metrics`) of the integer vs the float controller on the same profile and seeds.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from agents.blimp.controllers import Controller, Flight, SNNController, SummedController, fly
from agents.export import c_build
from agents.export.blimp_codegen import DEFAULT_BLIMP_PREFIX, generate_blimp_c
from agents.export.blimp_quantization import IntegerBlimpController, quantize_network
from agents.export.blimp_reference import (
    BlimpReference,
    IntegerController,
    command_from_q16,
    error_to_q16,
    synaptic_fan_out,
)
from agents.export.overflow import bounds_table, check_blimp_overflow
from agents.export.quantization import ExportError
from experiments.blimp_config import EvolveConfig
from experiments.blimp_evolution import EvolutionRun
from experiments.config import config_sections
from experiments.export.report import footprint_rows, table_row, write_report
from experiments.run_dir import CheckpointError, write_atomic

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
    reference = BlimpReference(controller)
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


def worst_case_blimp_sops(controller: IntegerBlimpController) -> int:
    """SOPs of one tick if every neuron spiked."""
    return sum(net.hidden * sum(synaptic_fan_out(net)) for net in controller.networks)


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
    bounds = check_blimp_overflow(controller)
    generated = generate_blimp_c(controller, options.prefix)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {}
    if "npz" in options.formats:
        controller.save(out / "controller.npz")
        write_atomic(out / "spec.json", json.dumps(controller.spec(), indent=2) + "\n")
        written["npz"] = ["controller.npz", "spec.json"]
    if "c" in options.formats:
        c_build.write_sources(generated, out)
        written["c"] = [f"{options.prefix}.c", f"{options.prefix}.h"]
    profile = profile_for(targets)
    report: dict = {
        "runs": [str(path) for path in run_dirs],
        "controller": "+".join(targets),
        "command": " ".join(sys.argv),
        "spec": controller.spec(),
        "model_hash": generated.model_hash,
        "artefacts": written,
        "overflow_bounds": bounds_table(bounds),
        "sops_worst_case": worst_case_blimp_sops(controller),
        "profile": profile,
    }
    c_executor = None
    with tempfile.TemporaryDirectory() as scratch:
        build = Path(scratch)
        if shutil.which("gcc"):
            c_build.check_strict(generated, build)
            report["footprint"] = c_build.footprint(generated, build).to_dict()
            library = c_build.build_shared(generated, build / "lib", sanitize=False)
            c_executor = c_build.CBlimpController(library, options.prefix, len(controller.networks))
        if options.repeats > 0:
            env = BlimpAltitudeEnv(terminate_on_contact=False)
            plan = episodes(profile, options.repeats, options.seed)
            integer = IntegerController(BlimpReference(controller))
            float_flights = [fly(env, float_controller, seed, opts) for seed, opts in plan]
            int_flights = [fly(env, integer, seed, opts) for seed, opts in plan]
            report["errors"] = command_errors(controller, float_flights)
            other_bits = 8 if options.weight_bits == 16 else 16
            other, _, _ = _load(run_dirs, other_bits)
            report["errors_other_weight_bits"] = {"weight_bits": other_bits, **command_errors(other, float_flights)}
            report["closed_loop"] = {"episodes": len(plan), "seed": options.seed,
                                     "float": _metrics(float_flights), "integer": _metrics(int_flights)}  # fmt: skip
            if c_executor is not None:
                c_controller = IntegerController(c_executor)
                seed, opts = plan[0]
                c_flight = fly(env, c_controller, seed, opts)
                integer_first = fly(env, integer, seed, opts)
                report["closed_loop"]["c_matches_reference"] = bool(
                    c_controller.commands_q == integer.commands_q and np.array_equal(c_flight["z"], integer_first["z"])
                )
    write_report(report, out, format_blimp_markdown)
    return report


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
    lines += ["", "Overflow bounds (proven at export for any number of ticks) and the largest state seen:", ""]
    lines += [
        "| layer | bound abs current | bound abs voltage | bits | margin | observed max abs state |",
        "|" + "---|" * 6,
    ]
    for bound in report["overflow_bounds"]:
        lines.append(
            f"| {bound['layer']} | {bound['current_bound']} | {bound['voltage_bound']} | {bound['bits_used']} "
            f"| {bound['margin_bits']} | {peaks.get(bound['layer'], '-')} |"
        )
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


__all__ = ["BLIMP_FORMATS", "BlimpExportOptions", "export_blimp_runs", "run_kind"]
