"""Integer export of evolved blimp controllers: bit-exact C (gcc + UBSan via ctypes) vs the NumPy reference for the
``lif``, ``iwta`` and ``recurrent-iwta`` variants and the PD + I sum, integer vs float command error, the overflow
proof, and the CLI end to end on a tiny evolution run with its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from agents.blimp.controllers import fly
from agents.blimp.snn import SNNArchitecture, SNNPopulation
from agents.export import c_build
from agents.export.blimp_codegen import generate_blimp_c
from agents.export.blimp_quantization import ERROR_CLIP_Q16, IntegerBlimpController, quantize_network
from agents.export.blimp_reference import BlimpReference, command_from_q16, error_to_q16
from agents.export.overflow import OverflowRiskError, check_blimp_overflow
from envs.blimp.env import BlimpAltitudeEnv
from experiments.blimp_evolution import EvolutionRun

TINY_EVOLVE = [
    "--set", "network.hidden=10", "--set", "data.train_windows=2", "--set", "data.window_s=20",
    "--set", "data.test_s=30", "--set", "evolution.popsize=8", "--set", "evolution.test_every=2",
    "--set", "evolution.checkpoint_every=2", "--no-progress",
]  # fmt: skip


def controller_of(*variants: str, hidden: int = 12, seed: int = 0, weight_bits: int = 16) -> IntegerBlimpController:
    """Networks decoded from activity-preserving random genomes, named ``n0, n1, ...``."""
    rng = np.random.default_rng(seed)
    nets = []
    for k, variant in enumerate(variants):
        arch = SNNArchitecture(hidden, variant, 0.3 if k else 1.0)
        nets.append(quantize_network(arch, arch.initial_genome(rng), f"n{k}", weight_bits))
    return IntegerBlimpController(nets, weight_bits)


def probe_errors(count: int, seed: int = 1) -> np.ndarray:
    """Q16.16 errors: a random walk in range, random values far outside (+-100 m), and the int32 edges."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.03, count))
    wild = rng.uniform(-100, 100, count // 5)
    edges = np.array([0.0, 8.0, -8.0, 8.0001, -8.0001, 1e6, -1e6])
    q = error_to_q16(np.concatenate([walk, wild, edges, walk[: count // 5]]))
    return np.concatenate([q, np.array([2**31 - 1, -(2**31), ERROR_CLIP_Q16, -ERROR_CLIP_Q16], np.int32)])


def assert_bit_exact(
    controller: IntegerBlimpController, errors_q: np.ndarray, tmp_path: Path, saturates: bool = True
) -> None:
    generated = generate_blimp_c(controller)
    c_build.check_strict(generated, tmp_path)
    library = c_build.build_shared(generated, tmp_path, sanitize=True)
    c_controller = c_build.CBlimpController(library, generated.prefix, len(controller.networks))
    expected, got = BlimpReference(controller).run(errors_q), c_controller.run(errors_q)
    for field in ("commands", "spikes", "sops", "saturated"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)
    assert expected.spikes.sum(axis=0).min() > 0  # every layer spiked
    assert (expected.saturated.sum() > 0) == saturates


@pytest.mark.parametrize(
    "variants",
    [("lif",), ("iwta",), ("recurrent-iwta",), ("lif", "iwta")],
    ids=["lif", "iwta", "recurrent-iwta", "pd+i-sum"],
)
def test_c_is_bit_exact_with_numpy_reference(variants: tuple[str, ...], tmp_path: Path) -> None:
    assert_bit_exact(controller_of(*variants), probe_errors(3000), tmp_path)


def test_int8_weights_are_bit_exact_too(tmp_path: Path) -> None:
    controller = controller_of("lif", "recurrent", weight_bits=8)
    assert controller.networks[0].enc_weight.dtype == np.int8
    assert_bit_exact(controller, probe_errors(1500, seed=3), tmp_path)


def test_integer_commands_track_the_float_network() -> None:
    """Bound: the error comes from rare spike flips near a threshold; one flip moves the command by at most one
    readout gain max|(1 - tau_d) W_d| (then decays with tau_d), and flips are rare, so the mean error stays below
    half of one spike's command (measured: 7 % for LIF; 30 % for IWTA, where a flipped encoding spike also shifts
    every hidden threshold through the slow traces)."""
    rng = np.random.default_rng(5)
    errors = np.cumsum(rng.normal(0, 0.03, 3000))
    for variant in ("lif", "iwta"):
        arch = SNNArchitecture(20, variant)
        genome = arch.initial_genome(rng)
        float_commands = SNNPopulation(arch, genome[None]).run(errors)[:, 0].numpy()
        controller = IntegerBlimpController([quantize_network(arch, genome, "pd")], 16)
        commands = command_from_q16(BlimpReference(controller).run(error_to_q16(errors)).commands)
        params = arch.decode(genome[None])
        spike_gain = float(((1 - params["dec_decay"]) * params["dec_weight"]).abs().max())
        error = np.abs(commands - float_commands)
        assert error.mean() < 0.5 * spike_gain, (variant, error.mean(), spike_gain)


def test_overflow_check_fires_on_crafted_network() -> None:
    controller = controller_of("lif")
    net = controller.networks[0]
    check_blimp_overflow(controller)
    net.hid_weight = np.full_like(net.hid_weight, np.iinfo(net.hid_weight.dtype).max)
    net.hid_syn_decay = np.full_like(net.hid_syn_decay, 4095)
    with pytest.raises(OverflowRiskError, match="'n0/hidden'"):
        check_blimp_overflow(controller)


def test_observed_states_stay_within_the_proven_bounds() -> None:
    controller = controller_of("iwta", "recurrent")
    bounds = {b.layer: max(b.current_bound, b.voltage_bound) for b in check_blimp_overflow(controller)}
    reference = BlimpReference(controller)
    reference.run(probe_errors(2000))
    assert reference.state_peaks and all(0 < peak <= bounds[name] for name, peak in reference.state_peaks.items())


def test_npz_round_trip_and_deterministic_c(tmp_path: Path) -> None:
    controller = controller_of("recurrent-iwta", "lif")
    controller.save(tmp_path / "c.npz")
    loaded = IntegerBlimpController.load(tmp_path / "c.npz")
    assert generate_blimp_c(loaded).source == generate_blimp_c(controller).source
    errors = probe_errors(300)
    np.testing.assert_array_equal(
        BlimpReference(loaded).run(errors).commands, BlimpReference(controller).run(errors).commands
    )
    with pytest.raises(ValueError, match="integer array"):
        BlimpReference(controller).run(np.array([0.1, 0.2]))


# ---- end to end on a tiny evolution run ------------------------------------------------------------
@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("blimp_export") / "pd"
    code = run_cli(
        "evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 2, *TINY_EVOLVE
    )
    assert code == 0
    return run


def test_export_cli_blimp_pd_plus_i_end_to_end(evolved: Path, tmp_path: Path) -> None:
    out = tmp_path / "pd_i"
    assert run_cli("export", evolved, "--add", evolved, "--out", out) == 0
    for name in ("controller.npz", "spec.json", "spikerl_blimp.c", "spikerl_blimp.h", "report.md", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["controller"] == "pd+pd1" and report["profile"] == "paper-full"
    assert report["closed_loop"]["c_matches_reference"] is True
    assert report["footprint"]["flash"] > 0 and report["errors"]["ticks"] == 3500
    assert set(report["closed_loop"]["integer"]) >= {"rmse_cm", "sse_cm"}
    # the recorded closed-loop error sequence replays bit-exactly through the exported C
    controller = IntegerBlimpController.load(out / "controller.npz")
    env = BlimpAltitudeEnv(terminate_on_contact=False)
    flight = fly(env, EvolutionRun(evolved).load_controller(), 3, {"profile": "paper-pd", "step": 0.5})
    assert_bit_exact(controller, error_to_q16(flight["error"]), tmp_path / "c", saturates=False)


def test_export_cli_blimp_errors(evolved: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("export", tmp_path, "--out", tmp_path / "o") == 2
    assert "neither an RL run" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((evolved / "config.yaml").read_text())
    assert run_cli("export", bare, "--out", tmp_path / "o") == 2
    assert "best.npz is missing" in capsys.readouterr().err
    assert run_cli("export", evolved, "--out", tmp_path / "o", "--format", "nir") == 2
    assert "no NIR primitive" in capsys.readouterr().err
    assert run_cli("export", evolved, "--add", bare, "--out", tmp_path / "o") == 2
    assert "best.npz is missing" in capsys.readouterr().err
    rl = tmp_path / "rl"
    rl.mkdir()
    (rl / "config.yaml").write_text("env: {id: Hopper-v5}\n")
    assert run_cli("export", rl, "--add", evolved, "--out", tmp_path / "o") == 2
    assert "--add sums evolved blimp controllers" in capsys.readouterr().err
    assert run_cli("export", evolved, "--add", rl, "--out", tmp_path / "o", "--episodes", "0") == 2
    assert "not a blimp evolution run" in capsys.readouterr().err
    assert run_cli("export", evolved, "--qat-steps", 5, "--out", tmp_path / "o") == 2
    assert "RL actors only" in capsys.readouterr().err
