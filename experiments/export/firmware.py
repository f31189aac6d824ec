"""An exported policy as Cortex-M4 firmware, run under QEMU: bit-exactness on ARM, footprint, instructions per step.

The firmware is the exported C (``spikerl_policy.c`` or ``spikerl_blimp.c``) plus the static sources in
``experiments/export/firmware/``: start-up code and vector table, a linker script for QEMU's ``mps2-an386`` board
(Cortex-M4), semihosting calls, a harness that streams input records from ``in.bin`` through the policy and writes
the outputs to ``out.bin``, and one adapter per policy kind. Everything is built with ``arm-none-eabi-gcc
-mcpu=cortex-m4 -mthumb -Os``.

Instructions per step: QEMU runs with ``-icount shift=0`` (the virtual clock advances a fixed time per guest
instruction), and the harness reads the SysTick counter (core clock) around every step, so a tick is a fixed number
of instructions; a calibration loop of known length in the same run gives that number (40 on this board). The
counts are exact up to one tick.

Command line (after ``train_agent.py export``)::

    python -m experiments.export.firmware EXPORT_DIR [--steps 1000] [--seed 12345]

writes ``firmware.json`` and ``firmware.md`` into EXPORT_DIR and exits 1 if the firmware's outputs differ from the
NumPy integer reference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.export.c_build import Footprint, gcc, object_footprint, section_sizes
from envs.errors import UserError

TARGETS = ("cortex-m4",)
SOURCES = Path(__file__).with_name("firmware")
MACHINE = "mps2-an386"
COMPILER, SIZE_TOOL, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"
ARM_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CPU_FLAGS = ("-mcpu=cortex-m4", "-mthumb")
FLOAT_ABI = {"soft": ("-mfloat-abi=soft",), "hard": ("-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")}
C_FLAGS = ("-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
HARNESS_FILES = ("startup.c", "semihost.c", "harness.c")
ADAPTERS = ("policy", "blimp", "mlp")
CALIBRATION_LOOP_INSTRUCTIONS = 2 * 100_000  # harness.c: CALIBRATION_LOOPS x (subs, bne)
CLOCK_HZ = 168_000_000  # STM32F4-class Cortex-M4 clock of the estimate
ASSUMED_CPI = 1.5  # cycles per instruction of the estimate (an assumption, see docs/export.md)
QEMU_TIMEOUT_S = 600
# common parts: (name, flash bytes, RAM bytes)
PARTS = (
    ("256 KiB flash / 32 KiB RAM part", 256 * 1024, 32 * 1024),
    ("STM32F401RC (256 KiB / 64 KiB)", 256 * 1024, 64 * 1024),
    ("STM32F407VG (1 MiB / 192 KiB)", 1024 * 1024, 192 * 1024),
    ("nRF52832 (512 KiB / 64 KiB)", 512 * 1024, 64 * 1024),
    ("nRF52840 (1 MiB / 256 KiB)", 1024 * 1024, 256 * 1024),
)


class ToolchainMissing(UserError, RuntimeError):
    """arm-none-eabi-gcc, arm-none-eabi-size or qemu-system-arm is not on PATH."""


class MissingExportFile(UserError, FileNotFoundError):
    """The export directory lacks a file the firmware step needs."""


class FirmwareError(RuntimeError):
    """The firmware did not build, or QEMU did not run it to a clean exit (the message carries the output)."""


def missing_tools() -> list[str]:
    """Names of the cross toolchain and emulator programs that are not on PATH."""
    return [tool for tool in (COMPILER, SIZE_TOOL, QEMU) if shutil.which(tool) is None]


def require_toolchain() -> None:
    """Raise :class:`ToolchainMissing` naming what is missing and how to install it."""
    missing = missing_tools()
    if missing:
        raise ToolchainMissing(
            f"{', '.join(missing)} not on PATH; install with `make toolchain` (Debian packages: {ARM_PACKAGES})"
        )


@dataclass
class FirmwareImage:
    """A linked firmware ELF and the sizes of its parts (bytes)."""

    elf: Path
    policy: Footprint  # the policy object alone: code (text), weights and LUTs (rodata), state (bss)
    policy_stack: int  # sum of the policy functions' stack frames (an upper bound on its stack depth)
    flash: int  # whole firmware: code + constants + initialised data
    ram: int  # whole firmware: data + bss + the harness stack reserve

    def footprint(self) -> dict:
        """Policy vs harness split, in bytes; the harness includes start-up, semihosting, libc/libgcc pieces and
        its stack reserve."""
        return {
            "policy": {**self.policy.to_dict(), "stack": self.policy_stack},
            "harness_flash": self.flash - self.policy.flash,
            "harness_ram": self.ram - self.policy.ram,
            "firmware_flash": self.flash,
            "firmware_ram": self.ram,
        }


def build_firmware(
    adapter: str, source: Path, build_dir: Path, float_abi: str = "soft", defines: tuple[str, ...] = ()
) -> FirmwareImage:
    """Compile ``source`` (a generated policy ``.c``; its header next to it) with the harness and the ``adapter``
    (one of :data:`ADAPTERS`) into ``build_dir/firmware.elf``."""
    require_toolchain()
    if adapter not in ADAPTERS:
        raise ValueError(f"unknown firmware adapter {adapter!r}; valid: {', '.join(ADAPTERS)}")
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = [*CPU_FLAGS, *FLOAT_ABI[float_abi], *C_FLAGS, "-I", str(SOURCES), "-I", str(source.parent), *defines]
    objects = []
    for path in [*(SOURCES / name for name in HARNESS_FILES), SOURCES / f"adapter_{adapter}.c"]:
        obj = build_dir / f"{path.stem}.o"
        gcc([*flags, "-c", str(path), "-o", str(obj)], COMPILER)
        objects.append(obj)
    policy_obj = build_dir / "policy.o"
    gcc([*flags, "-fstack-usage", "-c", str(source), "-o", str(policy_obj)], COMPILER)
    elf = build_dir / "firmware.elf"
    link = [*CPU_FLAGS, *FLOAT_ABI[float_abi], "-Os", "-nostartfiles", "-T",
            str(SOURCES / "mps2_an386.ld"), "-Wl,--gc-sections", *map(str, objects), str(policy_obj), "-lm",
            "-o", str(elf)]  # fmt: skip
    gcc(link, COMPILER)
    sizes = section_sizes(elf, SIZE_TOOL)
    flash = sizes.get(".text", 0) + sizes.get(".ARM.exidx", 0) + sizes.get(".data", 0)
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0) + sizes.get(".stack", 0)
    stack = sum(int(line.split("\t")[1]) for line in policy_obj.with_suffix(".su").read_text().splitlines())
    return FirmwareImage(elf, object_footprint(policy_obj, SIZE_TOOL), stack, flash, ram)


@dataclass
class FirmwareRun:
    """Outputs of one QEMU run: ``outputs [B, out_words]`` (int64) and ``instructions [B]`` per step."""

    outputs: np.ndarray
    instructions: np.ndarray
    instructions_per_tick: int  # the resolution of ``instructions``


def run_firmware(image: FirmwareImage, records: np.ndarray, out_words: int, directory: Path) -> FirmwareRun:
    """Run ``image`` under QEMU on ``records [B, in_words]`` (int32 words) in ``directory``."""
    require_toolchain()
    directory.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(records, dtype=np.int32).tofile(directory / "in.bin")
    command = [QEMU, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "none",
               "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,align=off,sleep=off",
               "-kernel", str(image.elf)]  # fmt: skip
    try:
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=QEMU_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise FirmwareError(f"{QEMU} did not finish {image.elf.name} within {QEMU_TIMEOUT_S} s") from error
    if result.returncode != 0:
        raise FirmwareError(f"{QEMU} exited {result.returncode} on {image.elf.name}:\n{result.stdout}{result.stderr}")
    words = np.fromfile(directory / "out.bin", dtype=np.int32).astype(np.int64)
    empty, loop = words[:2]
    per_tick = round(CALIBRATION_LOOP_INSTRUCTIONS / (loop - empty))
    body = words[2:].reshape(-1, out_words + 1)
    if body.shape[0] != records.shape[0]:
        raise FirmwareError(f"firmware wrote {body.shape[0]} records for {records.shape[0]} inputs")
    return FirmwareRun(body[:, :out_words], (body[:, out_words] - empty) * per_tick, per_tick)


def step_cost(instructions: np.ndarray, cpi: float = ASSUMED_CPI, clock_hz: int = CLOCK_HZ) -> dict:
    """Instructions per step (mean / p99 / max) and the latency and control rate they imply at ``clock_hz`` if
    every instruction takes ``cpi`` cycles."""
    mean, p99, peak = float(instructions.mean()), float(np.percentile(instructions, 99)), float(instructions.max())
    return {
        "steps": int(instructions.size),
        "instructions_mean": mean,
        "instructions_p99": p99,
        "instructions_max": peak,
        "cpi": cpi,
        "clock_hz": clock_hz,
        "latency_us_mean": mean * cpi / clock_hz * 1e6,
        "latency_us_max": peak * cpi / clock_hz * 1e6,
        "rate_hz_mean": clock_hz / (mean * cpi),
        "rate_hz_worst": clock_hz / (peak * cpi),
    }


def fitting_parts(flash: int, ram: int) -> list[str]:
    """The entries of :data:`PARTS` whose flash and RAM hold ``flash`` and ``ram`` bytes."""
    return [name for name, part_flash, part_ram in PARTS if flash <= part_flash and ram <= part_ram]


# ---- exported spiking actors ---------------------------------------------------------------------------
def deploy_policy(
    export_dir: Path,
    raw_obs: np.ndarray,
    build_dir: Path,
    prefix: str = "spikerl_policy",
    simd: bool = True,
    mlp_steps: int | None = None,
) -> dict:
    """Build ``export_dir``'s policy as firmware, run it on ``raw_obs [B, N]`` and compare every action,
    saturation count and SOP count with the NumPy integer reference; also build and run the float32 MLP actor of
    the same hidden sizes (Cortex-M4F, hard float) on the first ``mlp_steps`` observations (all by default).
    ``simd=False`` builds the portable synaptic loop (``-DSPIKERL_NO_SIMD``). Returns the result dict."""
    from agents.export.quantization import IntegerPolicy, observations_to_q16

    source = _exported_file(export_dir, f"{prefix}.c")
    policy = IntegerPolicy.load(_exported_file(export_dir, "policy.npz"))
    obs_q = observations_to_q16(raw_obs)
    defines = (f"-DPOLICY_PREFIX={prefix}", f'-DPOLICY_HEADER="{prefix}.h"', f"-DPOLICY_UPPER={prefix.upper()}",
               *(() if simd else ("-DSPIKERL_NO_SIMD",)))  # fmt: skip
    image = build_firmware("policy", source, build_dir / "policy", defines=defines)
    run = run_firmware(image, obs_q, policy.act_dim + 2, build_dir / "policy_run")
    expected = policy.reference()(obs_q)
    reference = np.concatenate([expected.actions, expected.saturated[:, None], expected.sops[:, None]], axis=1)
    result = _compared("policy", image, run, reference, expected.sops, simd=simd)
    result["instructions_per_sop"] = _per_sop(run.instructions, expected.sops)
    hidden = policy.layer_widths[1:-1]
    result["mlp"] = deploy_mlp(policy.obs_dim, hidden, policy.act_dim, raw_obs[:mlp_steps], build_dir / "mlp")
    return result


def _per_sop(instructions: np.ndarray, sops: np.ndarray) -> dict:
    """Least-squares fit ``instructions = fixed + per_sop * SOPs`` over the steps."""
    design = np.stack([np.ones_like(sops, dtype=float), sops.astype(float)], axis=1)
    (fixed, per_sop), *_ = np.linalg.lstsq(design, instructions.astype(float), rcond=None)
    return {"fixed": float(fixed), "per_sop": float(per_sop)}


def deploy_mlp(
    obs_dim: int, hidden: list[int], act_dim: int, raw_obs: np.ndarray, build_dir: Path, float_abi: str = "hard"
) -> dict:
    """Build and run a float32 MLP actor ``obs_dim -> hidden -> act_dim`` (random weights: the cost does not depend
    on their values) on ``raw_obs``; its outputs are checked against PyTorch (float32 rounding only). ``float_abi``
    ``hard``: Cortex-M4F single-precision FPU; ``soft``: software floating point (a Cortex-M4 without FPU)."""
    import torch

    from agents.actors.mlp import MLPActor
    from agents.export.c_build import write_sources
    from agents.export.firmware_mlp import MLP_PREFIX, generate_mlp_c

    torch.manual_seed(0)
    actor = MLPActor(obs_dim, act_dim, list(hidden)).eval()
    source_dir = build_dir / "src"
    _, source = write_sources(generate_mlp_c(actor), source_dir)
    image = build_firmware("mlp", source, build_dir, float_abi, (f'-DPOLICY_HEADER="{MLP_PREFIX}.h"',))
    obs = np.ascontiguousarray(raw_obs, dtype=np.float32)
    run = run_firmware(image, obs.view(np.int32), act_dim, build_dir / "run")
    got = run.outputs.astype(np.int32).view(np.float32)
    with torch.no_grad():
        expected = torch.tanh(actor(torch.from_numpy(obs))).numpy()
    return {
        "hidden": list(hidden),
        "float_abi": " ".join(FLOAT_ABI[float_abi]),
        "max_abs_error_vs_torch": float(np.abs(got - expected).max()),
        "footprint": image.footprint(),
        "cost": step_cost(run.instructions),
    }


# ---- exported blimp controllers ------------------------------------------------------------------------
def deploy_blimp(export_dir: Path, errors_q: np.ndarray, build_dir: Path, prefix: str = "spikerl_blimp") -> dict:
    """Build ``export_dir``'s blimp controller as firmware, run it from power-on over the Q16.16 errors
    ``errors_q [T]`` and compare every command, saturation flag and SOP count with the NumPy integer reference."""
    from agents.export.blimp_quantization import IntegerBlimpController

    source = _exported_file(export_dir, f"{prefix}.c")
    controller = IntegerBlimpController.load(_exported_file(export_dir, "controller.npz"))
    errors_q = np.asarray(errors_q, dtype=np.int32).reshape(-1)
    defines = (f"-DPOLICY_PREFIX={prefix}", f'-DPOLICY_HEADER="{prefix}.h"')
    image = build_firmware("blimp", source, build_dir / "blimp", defines=defines)
    run = run_firmware(image, errors_q[:, None], 3, build_dir / "blimp_run")
    trace = controller.reference().run(errors_q)
    expected = np.stack([trace.commands, trace.saturated, trace.sops], axis=1)
    return _compared("blimp", image, run, expected, trace.sops)


def _compared(kind: str, image: FirmwareImage, run: FirmwareRun, expected: np.ndarray, sops: np.ndarray,
              **options: object) -> dict:  # fmt: skip
    """The result of a firmware ``run``: whether its output rows equal the NumPy reference's ``expected`` rows, the
    SOPs, footprint and cost; ``options`` (how it was built) follow the target."""
    mismatched = int(np.any(run.outputs != expected, axis=1).sum())
    return {
        "kind": kind,
        "target": TARGETS[0],
        **options,
        "observations": int(expected.shape[0]),
        "bit_exact": mismatched == 0,
        "mismatched_steps": mismatched,
        "sops_mean": float(sops.mean()),
        "sops_max": int(sops.max()),
        "footprint": image.footprint(),
        "fits": fitting_parts(image.policy.flash, image.policy.ram + image.policy_stack),
        "instructions_per_tick": run.instructions_per_tick,
        "cost": step_cost(run.instructions),
    }


# ---- recorded inputs, reports, command line ------------------------------------------------------------
def _exported_file(export_dir: Path, name: str) -> Path:
    path = export_dir / name
    if not path.is_file():
        raise MissingExportFile(f"{path} is missing: export with `train_agent.py export RUN --out {export_dir}` first")
    return path


def record_policy_observations(export_dir: Path, steps: int, seed: int) -> np.ndarray:
    """Raw observations ``[steps, N]`` visited by the exported integer policy (NumPy reference) in closed loop in
    the environment named by the export's ``report.json``."""
    from agents.export.quantization import IntegerPolicy
    from experiments.export.fidelity import integer_env_policy, run_episodes

    env_id = json.loads(_exported_file(export_dir, "report.json").read_text())["env"]
    policy = IntegerPolicy.load(_exported_file(export_dir, "policy.npz"))
    act = integer_env_policy(policy.reference(), policy.action_low, policy.action_high)
    observations: list[np.ndarray] = []
    while len(observations) < steps:
        observations += run_episodes(env_id, act, 1, seed + len(observations), True, "recording").observations
    return np.stack(observations[:steps])


def record_blimp_errors(export_dir: Path, seed: int) -> np.ndarray:
    """Q16.16 errors ``[T]`` of one closed-loop flight of the exported integer controller (NumPy reference) on the
    export's reference profile."""
    from agents.blimp.controllers import fly
    from agents.export.blimp_quantization import IntegerBlimpController
    from agents.export.blimp_reference import IntegerController, error_to_q16
    from envs.blimp.env import BlimpAltitudeEnv
    from experiments.blimp_eval import episodes

    profile = json.loads(_exported_file(export_dir, "report.json").read_text())["profile"]
    controller = IntegerBlimpController.load(_exported_file(export_dir, "controller.npz"))
    flight_seed, options = episodes(profile, 1, seed)[0]
    flight = fly(BlimpAltitudeEnv(terminate_on_contact=False), IntegerController(controller.reference()),
                 flight_seed, options)  # fmt: skip
    return error_to_q16(np.asarray(flight["error"]))


def deploy(export_dir: Path, steps: int = 1000, seed: int = 12345, command: str | None = None) -> dict:
    """Record inputs in closed loop, run the export as firmware, write ``firmware.json`` / ``firmware.md``;
    ``command`` is recorded as provenance (default: this process's command line)."""
    with tempfile.TemporaryDirectory() as scratch:
        if (export_dir / "controller.npz").is_file():
            result = deploy_blimp(export_dir, record_blimp_errors(export_dir, seed)[:steps], Path(scratch))
        else:
            result = deploy_policy(export_dir, record_policy_observations(export_dir, steps, seed), Path(scratch))
    result["command"] = command or " ".join(sys.argv)
    (export_dir / "firmware.json").write_text(json.dumps(result, indent=2) + "\n")
    (export_dir / "firmware.md").write_text(format_markdown(result))
    return result


def _kib(value: float) -> str:
    return f"{value / 1024:.2f} KiB"


def table_row(name: str, result: dict) -> str:
    """One row of the docs table: flash, RAM, instructions/step mean/p99/max, estimated µs and Hz."""
    policy, cost = result["footprint"]["policy"], result["cost"]
    ram = policy["ram"] + policy["stack"]
    return (
        f"| {name} | {_kib(policy['flash'])} | {_kib(ram)} | {cost['instructions_mean']:,.0f} / "
        f"{cost['instructions_p99']:,.0f} / {cost['instructions_max']:,.0f} | {cost['latency_us_mean']:,.0f} "
        f"({cost['latency_us_max']:,.0f}) | {cost['rate_hz_mean']:,.0f} ({cost['rate_hz_worst']:,.0f}) |"
    )


TABLE_HEADER = (
    "| policy | flash | RAM (incl. stack) | instructions / step mean / p99 / max | µs mean (max) | Hz mean (worst) |\n"
    "|---|---|---|---|---|---|"
)


def format_markdown(result: dict) -> str:
    """The human-readable firmware report."""
    fp, cost = result["footprint"], result["cost"]
    lines = [
        f"# Firmware ({result['target']}, QEMU {MACHINE})",
        "",
        f"`{result['command']}`",
        "",
        f"- bit-exact with the NumPy integer reference on {result['observations']} recorded inputs: "
        f"**{result['bit_exact']}** ({result['mismatched_steps']} mismatched steps)",
        f"- policy: code {fp['policy']['text']} B, constants {fp['policy']['rodata']} B, state "
        f"{fp['policy']['bss'] + fp['policy']['data']} B, stack <= {fp['policy']['stack']} B; harness "
        f"{fp['harness_flash']} B flash, {fp['harness_ram']} B RAM (incl. its stack reserve)",
        f"- fits: {', '.join(result['fits']) or 'none of the listed parts'}",
        f"- SOPs per step mean {result['sops_mean']:.0f}, max {result['sops_max']}; instruction resolution "
        f"{result['instructions_per_tick']}; estimate at {cost['clock_hz'] / 1e6:.0f} MHz, CPI {cost['cpi']}",
        "",
        TABLE_HEADER,
        table_row("integer SNN", result),
    ]
    if "mlp" in result:
        lines.append(table_row(f"float32 MLP {result['mlp']['hidden']} (M4F)", result["mlp"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.export.firmware", description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", type=Path, help="output directory of train_agent.py export")
    parser.add_argument("--steps", type=int, default=1000, help="recorded inputs to replay (default 1000)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the recording episodes")
    args = parser.parse_args(argv)
    try:
        command = " ".join(["python -m experiments.export.firmware", *(argv if argv is not None else sys.argv[1:])])
        result = deploy(args.export_dir, args.steps, args.seed, command)
    except (UserError, FirmwareError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_markdown(result))
    return 0 if result["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "TARGETS",
    "FirmwareError",
    "FirmwareImage",
    "FirmwareRun",
    "ToolchainMissing",
    "build_firmware",
    "deploy",
    "deploy_blimp",
    "deploy_mlp",
    "deploy_policy",
    "missing_tools",
    "run_firmware",
    "step_cost",
]
