"""Export report (JSON + Markdown): footprint, SOPs, energy estimate vs the float MLP actor, action error and
closed-loop return of the integer policy vs the float policy.

Energy model (Horowitz, ISSCC 2014, 45 nm; compute only, memory traffic excluded, so a lower bound): the integer
SNN pays one 32-bit integer add (0.1 pJ) per synaptic operation and one 32-bit integer multiply (3.1 pJ) per
decay per neuron per step; the float MLP actor pays one fp32 MAC (4.6 pJ) per weight.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from agents.activity import ENERGY_PER_MAC_PJ, mlp_macs
from agents.export.quantization import IntegerPolicy
from experiments.run_dir import write_atomic

ENERGY_INT32_ADD_PJ = 0.1
ENERGY_INT32_MULT_PJ = 3.1


def energy_estimate(policy: IntegerPolicy, sops_per_action: float, mlp_hidden: list[int]) -> dict:
    """Compute-energy per action of the integer SNN and of a dense float MLP actor with ``mlp_hidden``."""
    neurons = sum(policy.layer_widths[1:])
    decay_mults = 2 * neurons * policy.timesteps
    integer_pj = sops_per_action * ENERGY_INT32_ADD_PJ + decay_mults * ENERGY_INT32_MULT_PJ
    macs = mlp_macs([policy.obs_dim, *mlp_hidden, policy.act_dim])
    mlp_pj = macs * ENERGY_PER_MAC_PJ
    return {
        "integer_snn_pj_per_action": integer_pj,
        "decay_multiplies_per_action": decay_mults,
        "mlp_macs_per_action": macs,
        "mlp_fp32_pj_per_action": mlp_pj,
        "ratio_integer_vs_mlp": integer_pj / mlp_pj,
    }


def write_report(report: dict, directory: Path, markdown: Callable[[dict], str] | None = None) -> tuple[Path, Path]:
    """Write ``report.json``, ``report.md`` (rendered by ``markdown``, default :func:`format_markdown`) and (when
    returns were measured) ``returns.png`` into ``directory``."""
    json_path, md_path = directory / "report.json", directory / "report.md"
    write_atomic(json_path, json.dumps(report, indent=2, default=float) + "\n")
    write_atomic(md_path, (markdown or format_markdown)(report))
    if "returns" in report:
        plot_returns(report, directory / "returns.png")
    return json_path, md_path


def plot_returns(report: dict, path: Path) -> None:
    """Per-episode return of the float and the integer policy on the same episode seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = report["returns"]
    episodes = range(1, len(returns["float_returns"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(episodes, returns["float_returns"], "o-", label=f"float ({returns['float_mean']:.0f})")
    ax.plot(episodes, returns["integer_returns"], "s--", label=f"integer ({returns['integer_mean']:.0f})")
    ax.set_xlabel(f"episode (same seeds, first seed {returns['seed']})")
    ax.set_ylabel("return")
    ax.set_title(f"{report['env']} {report['spec']['actor']}: integer / float = {returns['ratio']:.3f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table_row(name: str, value) -> str:
    """One ``| name | value |`` Markdown table row."""
    return f"| {name} | {value} |"


def footprint_rows(footprint: dict) -> list[str]:
    """Flash and RAM rows of a :meth:`agents.export.c_build.Footprint.to_dict`."""
    flash, ram = footprint["flash"], footprint["ram"]
    return [
        table_row("flash (text + rodata + data, gcc -Os, host)", f"{flash} B ({flash / 1024:.2f} KiB)"),
        table_row("RAM (data + bss static state; stack not included)", f"{ram} B ({ram / 1024:.2f} KiB)"),
    ]


def bounds_rows(bounds: list[dict], peaks: dict, caption: str, states: tuple[str, str]) -> list[str]:
    """``caption`` and the table of the proven overflow ``bounds`` per layer (``states``: the names of the current
    and voltage columns) next to the largest state ``peaks`` observed."""
    header = f"| layer | bound abs {states[0]} | bound abs {states[1]} | bits | margin | observed max abs state |"
    lines = ["", caption, "", header, "|" + "---|" * 6]
    for bound in bounds:
        lines.append(
            f"| {bound['layer']} | {bound['current_bound']} | {bound['voltage_bound']} | {bound['bits_used']} "
            f"| {bound['margin_bits']} | {peaks.get(bound['layer'], '-')} |"
        )
    return lines


def format_markdown(report: dict) -> str:
    """Human-readable summary of ``report`` (sections appear only when measured)."""
    lines = [f"# Integer export report: {report['run']}", ""]
    spec = report["spec"]
    lines += [
        f"Actor **{spec['actor']}**, obs {spec['obs_dim']} x {spec['encoder_pop']} encoder neurons, "
        f"layers {' -> '.join(str(layer['fan_out']) for layer in spec['layers'])}, {spec['act_dim']} actions, "
        f"T = {spec['timesteps']}, H = {spec['headroom_bits']}, decays Q{spec['decay_bits']}. "
        f"Model hash `{report['model_hash']}`.",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    if "footprint" in report:
        lines += footprint_rows(report["footprint"])
    if "c_step_ns" in report:
        lines.append(
            table_row("C step latency (host CPU, -O2, benchmark loop)", f"{report['c_step_ns'] / 1000:.1f} us")
        )
        if "float_actor_step_ns" in report:
            float_us = report["float_actor_step_ns"] / 1000
            lines.append(
                table_row("float actor step, batch 1 (PyTorch + numba, same run)",
                     f"{float_us:.1f} us (C is {report['float_actor_step_ns'] / report['c_step_ns']:.1f}x faster)")
            )  # fmt: skip
    if "errors" in report:
        err = report["errors"]
        lines += [
            table_row("recorded observations", err["observations"]),
            table_row("max / p99 / mean abs action error", "{:.4f} / {:.4f} / {:.5f}".format(
                err["max_abs_action_error"], err["p99_abs_action_error"], err["mean_abs_action_error"])),
            table_row("observations saturated (outside trained range)",
                 f"{err['saturated_observations']} ({err['saturated_dimensions']} dimensions)"),
            table_row("SOPs per action mean / p99 / max / worst case",
                 f"{err['sops_mean']:.0f} / {err['sops_p99']:.0f} / {err['sops_max']} / {report['sops_worst_case']}"),
        ]  # fmt: skip
    if "energy" in report:
        en = report["energy"]
        lines.append(
            table_row(
                "energy per action (45 nm, compute only)",
                f"integer SNN {en['integer_snn_pj_per_action'] / 1000:.1f} nJ vs float MLP "
                f"{en['mlp_fp32_pj_per_action'] / 1000:.1f} nJ ({en['ratio_integer_vs_mlp']:.3f}x)",
            )
        )
    if "returns" in report:
        ret = report["returns"]
        lines += [
            table_row(f"float return ({ret['episodes']} episodes, seed {ret['seed']})",
                 f"{ret['float_mean']:.1f} ± {ret['float_std']:.1f}"),
            table_row("integer return (NumPy reference)", f"{ret['integer_mean']:.1f} ± {ret['integer_std']:.1f}"),
            table_row("integer / float", f"{ret['ratio']:.3f}"),
        ]  # fmt: skip
        if "c_matches_reference" in ret:
            lines.append(table_row("C closed-loop returns identical to NumPy", ret["c_matches_reference"]))
    caption = "Overflow bounds (proven at export) and the largest state seen on the recorded observations:"
    lines += bounds_rows(report["overflow_bounds"], report.get("observed_state_peaks", {}), caption, ("I", "V"))
    if report.get("qat"):
        lines += ["", f"Quantisation-aware fine-tuning: {json.dumps(report['qat'])}"]
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)
