"""Cortex-M4 firmware under QEMU (mps2-an386): the exported integer policies run bit-exact on ARM, with measured
footprint and instructions per step.

Needs arm-none-eabi-gcc and qemu-system-arm (``make toolchain``); without them the tests skip, except under
``CI=true``, where a missing toolchain fails them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from agents.export.quantization import IntegerPolicy
from experiments.export import firmware
from experiments.export.blimp_exporter import BlimpExportOptions, export_blimp_runs
from experiments.export.firmware_table import PRETRAINED_HALFCHEETAH, export_pretrained

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / PRETRAINED_HALFCHEETAH
BLIMP_RUNS = [ROOT / "docs/results/blimp/runs/blimp_pd_cl", ROOT / "docs/results/blimp/runs/blimp_i_integrator"]


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    missing = firmware.missing_tools()
    if missing:
        message = f"{', '.join(missing)} not installed: run `make toolchain` ({firmware.ARM_PACKAGES})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: the firmware tests must run, but {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def halfcheetah_export(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The committed pretrained HalfCheetah-v5 ILC-SAN policy exported to C + npz, and 200 observations it visits
    in closed loop (integer NumPy reference)."""
    out = tmp_path_factory.mktemp("halfcheetah")
    return out, export_pretrained(PRETRAINED, out, 200)


def test_halfcheetah_policy_is_bit_exact_on_cortex_m4(halfcheetah_export, tmp_path: Path) -> None:
    export_dir, obs = halfcheetah_export
    packed = firmware.deploy_policy(export_dir, obs, tmp_path / "simd", mlp_steps=20)
    portable = firmware.deploy_policy(export_dir, obs[:50], tmp_path / "portable", simd=False, mlp_steps=1)
    assert packed["bit_exact"] and portable["bit_exact"], (packed["mismatched_steps"], portable["mismatched_steps"])
    assert packed["observations"] == 200 and packed["sops_mean"] > 10_000  # the network is active
    # instruction counts: SysTick under -icount is 40 instructions per tick on this board; the cost grows with
    # the SOPs, and the packed int16 loop (SXTB16/SADD16) beats the portable int32 loop on every observation
    assert packed["instructions_per_tick"] == 40
    assert 2.0 < packed["instructions_per_sop"]["per_sop"] < portable["instructions_per_sop"]["per_sop"] < 8.0
    cost = packed["cost"]
    assert cost["instructions_mean"] <= cost["instructions_p99"] <= cost["instructions_max"]
    assert np.isclose(cost["latency_us_mean"], cost["instructions_mean"] * 1.5 / 168.0)
    assert cost["rate_hz_worst"] > 100  # HalfCheetah size keeps 100 Hz at 168 MHz (CPI 1.5) on these inputs
    # footprint from arm-none-eabi-size: every int8 weight is in the policy's constants; it fits a 256/32 KiB part
    policy = IntegerPolicy.load(export_dir / "policy.npz")
    weights = sum(layer.weight_t.size + (0 if layer.blocks_t is None else layer.blocks_t.size)
                  for layer in policy.layers)  # fmt: skip
    fp = packed["footprint"]["policy"]
    assert weights <= fp["rodata"] < weights + 8 * 1024 and 0 < fp["text"] < 4096
    assert fp["flash"] < 256 * 1024 and fp["ram"] + fp["stack"] < 32 * 1024
    assert "256 KiB flash / 32 KiB RAM part" in packed["fits"]
    assert packed["footprint"]["harness_flash"] > 0 and packed["footprint"]["harness_ram"] > 0
    # the float MLP baseline computes what PyTorch does, and its dense loop costs every MAC
    mlp = packed["mlp"]
    assert mlp["hidden"] == [256, 256] and mlp["max_abs_error_vs_torch"] < 1e-5
    macs = 17 * 256 + 256 * 256 + 256 * 6
    assert macs < mlp["cost"]["instructions_mean"] < 10 * macs
    assert mlp["footprint"]["policy"]["rodata"] >= 4 * (macs + 256 + 256 + 6)


def test_deploy_records_closed_loop_observations_and_writes_the_report(halfcheetah_export, tmp_path: Path) -> None:
    export_dir, _ = halfcheetah_export
    result = firmware.deploy(export_dir, steps=60, seed=3)
    assert result["bit_exact"] and result["observations"] == 60 and result["mlp"]["cost"]["steps"] == 60
    assert json.loads((export_dir / "firmware.json").read_text())["cost"] == result["cost"]
    assert "| float32 MLP [256, 256] (M4F) |" in (export_dir / "firmware.md").read_text()


def test_blimp_pd_i_controller_is_bit_exact_on_cortex_m4(tmp_path: Path) -> None:
    export_dir = tmp_path / "blimp_pd_i"
    export_blimp_runs(BLIMP_RUNS, export_dir, BlimpExportOptions(formats=("c", "npz"), repeats=0))
    errors = firmware.record_blimp_errors(export_dir, seed=1000)  # one closed-loop paper-full flight
    assert errors.size > 1000
    result = firmware.deploy_blimp(export_dir, errors, tmp_path / "build")
    assert result["bit_exact"], result["mismatched_steps"]
    assert result["observations"] == errors.size and result["sops_mean"] > 0
    assert result["footprint"]["policy"]["flash"] < 8 * 1024
    assert 1000 < result["cost"]["instructions_mean"] <= result["cost"]["instructions_max"] < 100_000


def test_cli_target_cortex_m4_and_errors(tmp_path: Path, capsys) -> None:
    out = tmp_path / "blimp"
    args = ["--add", BLIMP_RUNS[1], "--out", out, "--episodes", 0, "--target", "cortex-m4"]
    code = run_cli("export", BLIMP_RUNS[0], *args)
    assert code == 0
    result = json.loads((out / "firmware.json").read_text())
    assert result["bit_exact"] and result["observations"] == 1000 and (out / "firmware.md").is_file()
    assert "| integer SNN |" in (out / "firmware.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert firmware.main([str(empty)]) == 2
    assert "report.json is missing: export with" in capsys.readouterr().err
    # a blimp firmware links the C and reads the quantised controller from the npz: both formats are required
    assert run_cli("export", BLIMP_RUNS[0], "--format", "c", "--out", tmp_path / "c_only", "--target", "cortex-m4") == 2
    assert "--target cortex-m4 needs the c and npz artefacts; add npz to --format" in capsys.readouterr().err
    assert not (tmp_path / "c_only").exists()
