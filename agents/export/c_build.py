"""Compile generated C with gcc, call it through ctypes, measure its footprint and step latency.

Only the harness lives here; the policy source itself comes from :mod:`agents.export.c_codegen`.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.export.blimp_reference import BlimpTrace
from agents.export.c_codegen import GeneratedC
from agents.export.reference import IntegerStep

# the no-float and warning gate of the issue; the policy must build with these flags
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-mgeneral-regs-only")
SANITIZE_FLAGS = ("-fsanitize=undefined", "-fno-sanitize-recover=undefined")


class CompilerError(RuntimeError):
    """gcc is missing or rejected the generated code (the message carries its output)."""


def write_sources(generated: GeneratedC, directory: Path) -> tuple[Path, Path]:
    """Write ``<prefix>.h`` and ``<prefix>.c`` into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    header = directory / f"{generated.prefix}.h"
    source = directory / f"{generated.prefix}.c"
    header.write_text(generated.header)
    source.write_text(generated.source)
    return header, source


def gcc(args: list[str], compiler: str = "gcc") -> None:
    """Run ``compiler`` (gcc or a cross gcc) with ``args``; raise :class:`CompilerError` with its output on failure."""
    if shutil.which(compiler) is None:
        raise CompilerError(f"{compiler} is not on PATH; it is needed to build and check the generated C")
    result = subprocess.run([compiler, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise CompilerError(f"{compiler} {' '.join(args)} failed:\n{result.stderr}")


def check_strict(generated: GeneratedC, directory: Path) -> None:
    """Compile the policy with :data:`STRICT_FLAGS` (no floating point, all warnings as errors)."""
    _, source = write_sources(generated, directory)
    gcc([*STRICT_FLAGS, "-O2", "-c", str(source), "-o", str(directory / f"{generated.prefix}.strict.o")])


def build_shared(generated: GeneratedC, directory: Path, sanitize: bool = True, optimise: str = "-O2") -> Path:
    """Build ``lib<prefix>.so`` (with UBSan by default) for ctypes; returns its path."""
    _, source = write_sources(generated, directory)
    library = directory / f"lib{generated.prefix}{'_ubsan' if sanitize else ''}.so"
    flags = [*STRICT_FLAGS[:-1], optimise, "-shared", "-fPIC", *(SANITIZE_FLAGS if sanitize else ())]
    gcc([*flags, str(source), "-o", str(library)])
    return library


class CPolicy:
    """ctypes wrapper of a built policy library, with the call signature of
    :class:`agents.export.reference.IntegerReference` (Q16.16 observations ``[B, N]``)."""

    def __init__(self, library: Path, prefix: str, obs_dim: int, act_dim: int, spiking_layers: int) -> None:
        self.obs_dim, self.act_dim, self.spiking_layers = obs_dim, act_dim, spiking_layers
        self._lib = ctypes.CDLL(str(library))
        self._step = getattr(self._lib, f"{prefix}_step")
        self._step.restype = ctypes.c_uint32
        self._step.argtypes = [ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int16)]
        stats_type = ctypes.c_uint32 * (2 + spiking_layers)
        self._stats = getattr(self._lib, f"{prefix}_last_stats")
        self._stats.restype = ctypes.POINTER(stats_type)
        self._obs = (ctypes.c_int32 * obs_dim)()
        self._act = (ctypes.c_int16 * act_dim)()

    def __call__(self, obs_q: np.ndarray) -> IntegerStep:
        obs_q = np.atleast_2d(np.asarray(obs_q, dtype=np.int32))
        batch = obs_q.shape[0]
        actions = np.empty((batch, self.act_dim), np.int64)
        counts = np.empty((batch, self.spiking_layers), np.int64)
        sops = np.empty(batch, np.int64)
        saturated = np.empty(batch, np.int64)
        obs_view = np.frombuffer(self._obs, dtype=np.int32)
        act_view = np.frombuffer(self._act, dtype=np.int16)
        for row in range(batch):
            obs_view[:] = obs_q[row]
            saturated[row] = self._step(self._obs, self._act)
            actions[row] = act_view
            stats = np.frombuffer(self._stats().contents, dtype=np.uint32)
            sops[row] = stats[1]
            counts[row] = stats[2:]
        return IntegerStep(actions, counts, sops, saturated, np.zeros_like(actions))


class CBlimpController:
    """ctypes wrapper of a built blimp controller library, with the interface of
    :class:`agents.export.blimp_reference.BlimpReference` (``reset``, ``run`` over Q16.16 errors ``[T]``)."""

    def __init__(self, library: Path, prefix: str, networks: int) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._reset = getattr(self._lib, f"{prefix}_reset")
        self._reset.restype = None
        self._step = getattr(self._lib, f"{prefix}_step")
        self._step.restype = ctypes.c_int32
        self._step.argtypes = [ctypes.c_int32]
        stats_type = ctypes.c_uint32 * (2 + 2 * networks)
        self._stats = getattr(self._lib, f"{prefix}_last_stats")
        self._stats.restype = ctypes.POINTER(stats_type)
        self.networks = networks
        self.reset()

    def reset(self) -> None:
        self._reset()

    def run(self, errors_q: np.ndarray) -> BlimpTrace:
        errors_q = np.atleast_1d(np.asarray(errors_q, dtype=np.int32))
        steps = errors_q.shape[0]
        trace = BlimpTrace(np.empty(steps, np.int64), np.empty((steps, 2 * self.networks), np.int64),
                           np.empty(steps, np.int64), np.empty(steps, np.int64))  # fmt: skip
        for t, error in enumerate(errors_q.tolist()):
            trace.commands[t] = self._step(error)
            stats = np.frombuffer(self._stats().contents, dtype=np.uint32)
            trace.saturated[t], trace.sops[t] = stats[0], stats[1]
            trace.spikes[t] = stats[2:]
        return trace


@dataclass
class Footprint:
    """Bytes of the compiled policy object (``size -A`` sections) and of its parts."""

    text: int  # code
    rodata: int  # const weights, LUTs, constants
    data: int
    bss: int  # the static workspace

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss

    def to_dict(self) -> dict:
        return {**asdict(self), "flash": self.flash, "ram": self.ram}


def footprint(generated: GeneratedC, directory: Path, optimise: str = "-Os") -> Footprint:
    """Compile the policy alone (``optimise``, no sanitizer) and read its section sizes."""
    _, source = write_sources(generated, directory)
    obj = directory / f"{generated.prefix}.size.o"
    gcc([*STRICT_FLAGS, optimise, "-c", str(source), "-o", str(obj)])
    return object_footprint(obj)


def section_sizes(obj: Path, size_tool: str = "size") -> dict[str, int]:
    """``{section name: bytes}`` of an object file or ELF from ``<size_tool> -A``."""
    output = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def object_footprint(obj: Path, size_tool: str = "size") -> Footprint:
    """Code, constants, data and workspace bytes of an object file (``.text.*`` counts as text, and so on)."""
    sections: dict[str, int] = {}
    for full_name, size in section_sizes(obj, size_tool).items():
        name = full_name.split(".")[1]
        sections[name] = sections.get(name, 0) + size
    return Footprint(
        sections.get("text", 0), sections.get("rodata", 0), sections.get("data", 0), sections.get("bss", 0)
    )


_BENCH_MAIN = """#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "{prefix}.h"

/* benchmark loop: argv[1] = binary file of int32 Q16.16 observations, argv[2] = repeats over the file */
int main(int argc, char **argv) {{
    FILE *file;
    long bytes, n, r, k, repeats;
    int32_t *obs;
    int16_t action[{upper}_ACT_DIM];
    struct timespec start, stop;
    volatile int32_t sink = 0;
    if (argc != 3) return 2;
    file = fopen(argv[1], "rb");
    if (!file) return 3;
    fseek(file, 0, SEEK_END);
    bytes = ftell(file);
    fseek(file, 0, SEEK_SET);
    n = bytes / (long)sizeof(int32_t) / {upper}_OBS_DIM;
    obs = malloc((size_t)bytes);
    if (!obs || fread(obs, 1, (size_t)bytes, file) != (size_t)bytes) return 4;
    fclose(file);
    repeats = atol(argv[2]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (r = 0; r < repeats; ++r)
        for (k = 0; k < n; ++k) {{
            {prefix}_step(obs + k * {upper}_OBS_DIM, action);
            sink += action[0];
        }}
    clock_gettime(CLOCK_MONOTONIC, &stop);
    printf("%ld %lld\\n", n * repeats,
           (long long)(stop.tv_sec - start.tv_sec) * 1000000000LL + (stop.tv_nsec - start.tv_nsec));
    free(obs);
    return 0;
}}
"""


def benchmark_step(generated: GeneratedC, directory: Path, obs_q: np.ndarray, repeats: int = 5) -> float:
    """Wall-clock nanoseconds per ``step`` call from a C loop (``-O2``, no sanitizer) over ``obs_q``: the best
    of ``repeats`` passes over the file (the least disturbed by other load on a shared machine)."""
    _, source = write_sources(generated, directory)
    main = directory / "bench_main.c"
    main.write_text(_BENCH_MAIN.format(prefix=generated.prefix, upper=generated.prefix.upper()))
    binary = directory / "bench_step"
    gcc(["-std=c99", "-O2", "-I", str(directory), str(main), str(source), "-o", str(binary)])
    data = directory / "bench_obs.bin"
    np.ascontiguousarray(obs_q, dtype=np.int32).tofile(data)
    best = float("inf")
    for _ in range(repeats):
        result = subprocess.run([str(binary), str(data), "1"], capture_output=True, text=True, check=True)
        calls, nanoseconds = (int(v) for v in result.stdout.split())
        best = min(best, nanoseconds / calls)
    return best
