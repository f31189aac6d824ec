"""The one export pipeline behind ``train_agent.py export``, for spiking actors and blimp controllers alike.

A quantised :class:`agents.export.network.IntegerNetwork` -> overflow proof -> artefacts -> C compiled with the strict
no-float flags, its footprint and a ctypes executor -> the network's own closed-loop fidelity measurement -> report.
The front ends (:mod:`experiments.export.exporter`, :mod:`experiments.export.blimp_exporter`) load and quantise their
float network and measure it; nothing else differs. Artefacts: ``npz`` (the network's ``.npz`` and ``spec.json``),
``c`` (``<prefix>.c`` / ``.h``), ``nir`` (actors only: ``policy.nir``, see :mod:`agents.export.nir_export`), and
always ``report.json`` / ``report.md``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.export import c_build
from agents.export.c_codegen import GeneratedC
from agents.export.network import IntegerNetwork
from agents.export.overflow import bounds_table
from experiments.export.report import write_report
from experiments.run_dir import write_atomic

# (C executor, None without gcc; the generated C; a scratch build directory) -> measured report fields
Measure = Callable[[Any, GeneratedC, Path], dict]


def export_network(
    network: IntegerNetwork, out: Path, formats: tuple[str, ...], prefix: str, identity: dict, context: dict,
    measure: Measure, markdown: Callable[[dict], str] | None = None,
) -> dict:  # fmt: skip
    """Prove, write, compile, check and report ``network``; returns the report: ``identity`` (what was exported),
    the command, spec, model hash, artefacts, overflow bounds and worst-case SOPs, ``context``, the footprint (with
    gcc), then what ``measure`` returns. ``markdown`` renders ``report.md`` (default: the actor report)."""
    bounds = network.check_overflow()
    generated = network.generate_c(prefix)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {}
    if "npz" in formats:
        network.save(out / network.npz_name)
        write_atomic(out / "spec.json", json.dumps(network.spec(), indent=2) + "\n")
        written["npz"] = [network.npz_name, "spec.json"]
    if "c" in formats:
        c_build.write_sources(generated, out)
        written["c"] = [f"{prefix}.c", f"{prefix}.h"]
    if "nir" in formats:
        from agents.export.nir_export import write_nir

        write_nir(network, out / "policy.nir")
        written["nir"] = ["policy.nir"]
    report = {**identity, "command": " ".join(sys.argv), "spec": network.spec(), "model_hash": generated.model_hash,
              "artefacts": written, "overflow_bounds": bounds_table(bounds),
              "sops_worst_case": network.worst_case_sops(), **context}  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        build, c_executor = Path(scratch), None
        if shutil.which("gcc"):
            c_build.check_strict(generated, build)
            report["footprint"] = c_build.footprint(generated, build).to_dict()
            c_executor = network.c_executor(c_build.build_shared(generated, build / "lib", sanitize=False), prefix)
        report.update(measure(c_executor, generated, build))
    write_report(report, out, markdown)
    return report


__all__ = ["Measure", "export_network"]
