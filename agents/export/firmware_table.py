"""Regenerate the "Running on a microcontroller" table of docs/export.md: the HalfCheetah-size ILC-SAN policy (packed
and portable synaptic loop), the float32 MLP actor of the same hidden sizes, and the evolved blimp controllers, each
built as Cortex-M4 firmware and run under QEMU on recorded inputs.

    python -m agents.export.firmware_table [--steps 1000] [--work DIR]

The HalfCheetah-size policy has the structure of the committed HalfCheetah-v5 export (17 x 10 encoder, 256-256,
6 x 10 output populations with intra-layer connections, T = 5) with a fixed random draw of weights, and is replayed
on observations of a random-action HalfCheetah-v5 rollout. The cost per step is ``fixed + per_sop x SOPs``; the row
"at the trained policy's SOPs" evaluates that fit at the SOP mean / p99 / max the committed report measured on the
trained policy's own observations.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from agents.export import firmware

HALFCHEETAH_SPEC = Path("docs/results/export/HalfCheetah-v5_ilcsan_td3_s0/report.json")
BLIMP_PD = [Path("docs/results/blimp/runs/blimp_pd")]
BLIMP_PD_I = [Path("docs/results/blimp/runs/blimp_pd_cl"), Path("docs/results/blimp/runs/blimp_i_integrator")]
TRANSIENT = 100  # rollout steps skipped at the start


def random_rollout(env_id: str, steps: int, seed: int = 0) -> np.ndarray:
    """Raw observations ``[steps, N]`` of ``env_id`` under uniform random actions (one seeded episode)."""
    import gymnasium as gym

    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    rows = []
    for _ in range(steps):
        rows.append(obs)
        obs, _, terminated, truncated, _ = env.step(rng.uniform(low, high))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(rows)


def export_halfcheetah_size(out: Path, steps: int, seed: int = 0) -> np.ndarray:
    """Export (C + npz) an ILC-SAN actor of HalfCheetah-v5 size with random weights (``seed``) and observation
    statistics of a random rollout into ``out``; returns ``steps`` recorded observations after the transient."""
    import torch

    from agents.actors import ActorConfig, build_actor
    from agents.export.exporter import export_policy
    from agents.export.quantization import quantize_actor
    from envs.normalization import ObservationStats

    obs = random_rollout("HalfCheetah-v5", steps + TRANSIENT, seed)
    torch.manual_seed(seed)
    actor = build_actor(17, 6, ActorConfig(name="ilcsan", hidden_sizes=[256, 256], encoder_pop=10, decoder_pop=10))
    stats = ObservationStats(obs.mean(axis=0), obs.var(axis=0), float(len(obs)), 3.0, 1e-8)
    export_policy(quantize_actor(actor.eval(), stats), out, ("c", "npz"))
    return obs[TRANSIENT:]


def _blimp(runs: list[Path], work: Path, seed: int = 1000) -> dict:
    from agents.export.blimp_exporter import BlimpExportOptions, export_blimp_runs

    export_blimp_runs(runs, work, BlimpExportOptions(formats=("c", "npz"), repeats=0))
    return firmware.deploy_blimp(work, firmware.record_blimp_errors(work, seed), work / "build")


def _predicted_row(name: str, result: dict, sops: dict) -> str:
    fit = result["instructions_per_sop"]
    predicted = {key: fit["fixed"] + fit["per_sop"] * sops[f"sops_{key}"] for key in ("mean", "p99", "max")}
    cost = firmware.step_cost(np.array([predicted["mean"]]))
    worst = firmware.step_cost(np.array([predicted["max"]]))
    policy = result["footprint"]["policy"]
    return (
        f"| {name} | {policy['flash'] / 1024:.2f} KiB | {(policy['ram'] + policy['stack']) / 1024:.2f} KiB | "
        f"{predicted['mean']:,.0f} / {predicted['p99']:,.0f} / {predicted['max']:,.0f} (fit) | "
        f"{cost['latency_us_mean']:,.0f} ({worst['latency_us_mean']:,.0f}) | "
        f"{cost['rate_hz_mean']:,.0f} ({worst['rate_hz_mean']:,.0f}) |"
    )


def build_table(steps: int, work: Path) -> tuple[str, dict]:
    """The markdown table and every result behind it."""
    obs = export_halfcheetah_size(work / "halfcheetah", steps)
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
    trained = json.loads(HALFCHEETAH_SPEC.read_text())["errors"]
    hidden = packed["mlp"]["hidden"]
    rows = [
        firmware.TABLE_HEADER,
        firmware.table_row("HalfCheetah-size ILC-SAN, packed int16 (SXTB16/SADD16)", packed),
        firmware.table_row("HalfCheetah-size ILC-SAN, portable int32 loop", portable),
        _predicted_row("same, at the trained policy's SOPs (report)", packed, trained),
        firmware.table_row(f"float32 MLP {hidden[0]}-{hidden[1]}, Cortex-M4F FPU", packed["mlp"]),
        firmware.table_row(f"float32 MLP {hidden[0]}-{hidden[1]}, soft-float (no FPU)", soft),
        firmware.table_row("blimp SNN-PD", results["blimp_pd"]),
        firmware.table_row("blimp SNN-PD + SNN-I", results["blimp_pd_i"]),
    ]
    return "\n".join(rows) + "\n", results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.export.firmware_table", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="recorded HalfCheetah observations (default 1000)")
    parser.add_argument("--work", type=Path, help="keep the exports, builds and results.json here")
    args = parser.parse_args(argv)
    firmware.require_toolchain()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        table, results = build_table(args.steps, work)
        (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
