"""Regenerate the "Running on a microcontroller" table of docs/export.md: the committed pretrained HalfCheetah-v5
ILC-SAN policy (packed and portable synaptic loop), the float32 MLP actor of the same hidden sizes, and the evolved
blimp controllers, each built as Cortex-M4 firmware and run under QEMU on recorded inputs.

    python -m experiments.export.firmware_table [--steps 1000] [--work DIR] [--out DIR]

The HalfCheetah policy is replayed on the observations it visits itself in closed loop (integer NumPy reference,
episodes seeded from ``RECORDING_SEED``). ``--out`` keeps ``results.json`` and ``firmware.md`` (the table and the
command) there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from experiments.export import firmware

PRETRAINED_HALFCHEETAH = Path("pretrained/HalfCheetah-v5_ilcsan_td3_100k_s0")
BLIMP_PD = [Path("docs/results/blimp/runs/blimp_pd")]
BLIMP_PD_I = [Path("docs/results/blimp/runs/blimp_pd_cl"), Path("docs/results/blimp/runs/blimp_i_integrator")]
RECORDING_SEED = 12345


def export_pretrained(package: Path, out: Path, steps: int, seed: int = RECORDING_SEED):
    """Export (C + npz) the policy package ``package`` into ``out``; returns ``steps`` raw observations ``[steps, N]``
    that the exported integer policy visits in closed loop."""
    from experiments.export.exporter import ExportOptions, export_run

    export_run(package, out, ExportOptions(formats=("c", "npz"), episodes=0, seed=seed, benchmark=False))
    return firmware.record_policy_observations(out, steps, seed)


def _blimp(runs: list[Path], work: Path, seed: int = 1000) -> dict:
    from experiments.export.blimp_exporter import BlimpExportOptions, export_blimp_runs

    export_blimp_runs(runs, work, BlimpExportOptions(formats=("c", "npz"), repeats=0))
    return firmware.deploy_blimp(work, firmware.record_blimp_errors(work, seed), work / "build")


def build_table(steps: int, work: Path) -> tuple[str, dict]:
    """The markdown table and every result behind it."""
    obs = export_pretrained(PRETRAINED_HALFCHEETAH, work / "halfcheetah", steps)
    packed = firmware.deploy_policy(work / "halfcheetah", obs, work / "packed")
    portable = firmware.deploy_policy(work / "halfcheetah", obs, work / "portable", simd=False, mlp_steps=1)
    soft = firmware.deploy_mlp(17, packed["mlp"]["hidden"], 6, obs[:50], work / "mlp_soft", "soft")
    results = {
        "halfcheetah_packed": packed,
        "halfcheetah_portable": portable,
        "mlp_soft_float": soft,
        "blimp_pd": _blimp(BLIMP_PD, work / "blimp_pd"),
        "blimp_pd_i": _blimp(BLIMP_PD_I, work / "blimp_pd_i"),
    }
    hidden = packed["mlp"]["hidden"]
    name = PRETRAINED_HALFCHEETAH.name
    rows = [
        firmware.TABLE_HEADER,
        firmware.table_row(f"{name}, packed int16 (SXTB16/SADD16)", packed),
        firmware.table_row(f"{name}, portable int32 loop", portable),
        firmware.table_row(f"float32 MLP {hidden[0]}-{hidden[1]}, Cortex-M4F FPU", packed["mlp"]),
        firmware.table_row(f"float32 MLP {hidden[0]}-{hidden[1]}, soft-float (no FPU)", soft),
        firmware.table_row("blimp SNN-PD", results["blimp_pd"]),
        firmware.table_row("blimp SNN-PD + SNN-I", results["blimp_pd_i"]),
    ]
    return "\n".join(rows) + "\n", results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.export.firmware_table", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--steps", type=int, default=1000, help="recorded HalfCheetah observations (default 1000)")
    parser.add_argument("--work", type=Path, help="keep the exports and builds here")
    parser.add_argument("--out", type=Path, help="write results.json and firmware.md (table and command) here")
    args = parser.parse_args(argv)
    firmware.require_toolchain()
    command = " ".join(["python -m experiments.export.firmware_table", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory() as scratch:
        table, results = build_table(args.steps, args.work or Path(scratch))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"command": command, **results}, indent=2) + "\n")
        (args.out / "firmware.md").write_text(f"# Cortex-M4 firmware under QEMU\n\nCommand: `{command}`\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
