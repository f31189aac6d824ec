"""Integer export: primitives, bit-exact C (gcc + UBSan via ctypes) vs the NumPy reference, overflow proof,
NIR round trip, export of an untrained and a briefly trained actor, and clear errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import tiny_td3_overrides

import train_agent
from agents.actors import ActorConfig, build_actor
from agents.export import c_build
from agents.export.c_codegen import TEMPLATES, generate_c
from agents.export.overflow import OverflowRiskError, check_overflow
from agents.export.quantization import ExportError, IntegerPolicy, observations_to_q16, quantize_actor
from agents.export.reference import IntegerReference, rhaz, rtz
from envs.normalization import ObservationStats

SMALL = {"hidden_sizes": [48, 40], "timesteps": 5, "encoder_pop": 10, "decoder_pop": 6}


def make_actor(name: str = "ilcsan", obs_dim: int = 7, act_dim: int = 3, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    actor = build_actor(obs_dim, act_dim, ActorConfig(name=name, **{**SMALL, **overrides}))
    return actor.eval()


def stats_for(obs_dim: int, seed: int = 0) -> ObservationStats:
    rng = np.random.default_rng(seed)
    return ObservationStats(rng.normal(0, 2, obs_dim), rng.uniform(0.01, 30, obs_dim), 1000.0, 3.0, 1e-8)


def probe_observations(stats: ObservationStats, count: int, seed: int = 1) -> np.ndarray:
    """Random observations across and beyond the trained range, plus edge cases."""
    rng = np.random.default_rng(seed)
    std = np.sqrt(stats.var)
    random = stats.mean + std * rng.normal(0, 2.0, (count, stats.mean.size))
    edges = np.stack([stats.mean, stats.mean + 3 * std, stats.mean - 3 * std, stats.mean + 50 * std,
                      np.zeros_like(stats.mean), np.full_like(stats.mean, 1e6)])  # fmt: skip
    return np.concatenate([random, edges])


def assert_bit_exact(policy: IntegerPolicy, obs_q: np.ndarray, tmp_path: Path, optimise: str = "-O2") -> None:
    library = c_build.build_shared(generate_c(policy), tmp_path, sanitize=True, optimise=optimise)
    c_policy = c_build.CPolicy(library, "spikerl_policy", policy.obs_dim, policy.act_dim, len(policy.layers) + 1)
    expected, got = IntegerReference(policy)(obs_q), c_policy(obs_q)
    for field in ("actions", "spike_counts", "sops", "saturated"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)
    assert expected.spike_counts[:, -1].sum() > 0  # the output populations did spike


def test_rounding_primitives_hand_computed() -> None:
    x = np.array([7, -7, 8, -8, 0, 1, -1, 4095, -4095, 4096, -4097, 2**40 + 5, -(2**40) - 5])
    assert rtz(x, 2).tolist() == [1, -1, 2, -2, 0, 0, 0, 1023, -1023, 1024, -1024, 2**38 + 1, -(2**38) - 1]
    assert rtz(x * 2048, 12).tolist()[:6] == [3, -3, 4, -4, 0, 0]  # 0.5 * 7 = 3.5 -> 3 (toward zero)
    assert rhaz(np.array([6, -6, 5, -5, 4, -4, 0]), 2).tolist() == [2, -2, 1, -1, 1, -1, 0]  # halves away from 0


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("ilcsan", {}),
        ("ilcsan", {"readout": "mean", "readout_decay": 0.9, "connections": "self"}),
        ("ilcsan", {"readout": "max-abs", "connections": "bias"}),
        ("popsan", {}),
    ],
)
def test_c_is_bit_exact_with_numpy_reference_untrained(name: str, overrides: dict, tmp_path: Path) -> None:
    actor = make_actor(name, **overrides)
    stats = stats_for(actor.obs_dim)
    policy = quantize_actor(actor, stats)
    check_overflow(policy)
    obs_q = observations_to_q16(probe_observations(stats, 3000))
    assert_bit_exact(policy, obs_q, tmp_path)
    # the strict gate of the issue: no floating point, every warning an error
    c_build.check_strict(generate_c(policy), tmp_path / "strict")


@pytest.mark.parametrize("optimise", ["-O0", "-Os", "-O3"])
def test_bit_exact_across_optimisation_levels(optimise: str, tmp_path: Path) -> None:
    actor = make_actor(seed=5)
    stats = stats_for(actor.obs_dim, seed=5)
    obs_q = observations_to_q16(probe_observations(stats, 1000))
    assert_bit_exact(quantize_actor(actor, stats), obs_q, tmp_path, optimise)


def test_integer_policy_tracks_float_policy_and_counts_saturation() -> None:
    actor = make_actor("popsan", seed=2)
    stats = stats_for(actor.obs_dim)
    obs = probe_observations(stats, 2000)[:2000]
    policy = quantize_actor(actor, stats)
    step = IntegerReference(policy)(observations_to_q16(obs))
    with torch.no_grad():
        reference = torch.tanh(actor(torch.from_numpy(stats.normalize(obs)))).numpy()
    error = np.abs(step.actions / 32767 - reference)
    assert error.mean() < 0.03  # int8 rounding + threshold flips, no systematic bias
    z = (obs - stats.mean) / np.sqrt(stats.var + stats.epsilon)
    np.testing.assert_array_equal(step.saturated, (np.abs(z) > 3.0 + 2.0**-12).sum(axis=1))


def test_generation_is_deterministic_and_npz_round_trips(tmp_path: Path) -> None:
    actor = make_actor()
    policy = quantize_actor(actor, stats_for(actor.obs_dim))
    first, second = generate_c(policy), generate_c(policy)
    assert first.source == second.source and first.model_hash == second.model_hash
    assert first.model_hash in first.header
    policy.save(tmp_path / "policy.npz")
    loaded = IntegerPolicy.load(tmp_path / "policy.npz")
    assert generate_c(loaded).source == first.source
    obs_q = observations_to_q16(probe_observations(stats_for(actor.obs_dim), 200))
    np.testing.assert_array_equal(IntegerReference(loaded)(obs_q).actions, IntegerReference(policy)(obs_q).actions)


def test_overflow_check_fires_on_crafted_network() -> None:
    actor = make_actor()
    with torch.no_grad():  # one row with tiny weights but a large bias: scale 127/1e-6 blows up the bias
        actor.layers[0].weight[3].fill_(1e-6)
        actor.layers[0].bias[3] = 5.0
    with pytest.raises(OverflowRiskError, match="layer 'hidden1'"):
        check_overflow(quantize_actor(actor))
    bounds = check_overflow(quantize_actor(make_actor()))
    assert [b.layer for b in bounds] == ["hidden1", "hidden2", "output", "readout"]
    assert all(b.margin_bits >= 2 for b in bounds)
    with pytest.raises(OverflowRiskError, match="20-bit state"):
        check_overflow(quantize_actor(make_actor()), state_bits=20)  # too narrow a target is refused


def test_observed_states_stay_within_the_proven_bounds() -> None:
    actor = make_actor(seed=3)
    stats = stats_for(actor.obs_dim, seed=3)
    policy = quantize_actor(actor, stats)
    reference = IntegerReference(policy)
    reference(observations_to_q16(probe_observations(stats, 2000)))
    for bound in check_overflow(policy):
        assert 0 < reference.state_peaks[bound.layer] <= max(bound.current_bound, bound.voltage_bound), bound.layer


def test_nir_round_trip(tmp_path: Path) -> None:
    from agents.export.nir_export import read_nir, write_nir

    policy = quantize_actor(make_actor())
    write_nir(policy, tmp_path / "policy.nir")
    graph = read_nir(tmp_path / "policy.nir")
    layer = policy.layers[0]
    np.testing.assert_allclose(graph.nodes["hidden1.affine"].weight, layer.weight_t.T / layer.scale[:, None])
    assert type(graph.nodes["output"]).__name__ == "CubaLIF" and type(graph.nodes["readout"]).__name__ == "CubaLI"
    np.testing.assert_allclose(graph.nodes["hidden1"].tau_syn, 2.0)  # dt / (1 - 0.5)
    np.testing.assert_allclose(graph.nodes["hidden1"].v_threshold, 0.5, rtol=2e-3)
    assert ("output.recurrent", "output") in graph.edges
    assert int(graph.metadata["T"]) == policy.timesteps and float(graph.metadata["dt"]) == 1.0


def test_mlp_and_random_encoder_are_rejected_with_reasons() -> None:
    with pytest.raises(ExportError, match="only spiking actors"):
        quantize_actor(build_actor(4, 2, ActorConfig(name="mlp")))
    with pytest.raises(ExportError, match="deterministic"):
        quantize_actor(make_actor(encoder="bernoulli"))


# ---- the C sources: templates (agents/export/templates/*.j2) and the static fragments they inline ----------------
FRAGMENT_PRELUDES = {  # what each static fragment expects from the source that inlines it
    "rtz_mul.c": "#define DECAY_BITS 12\n",
    "rhaz.c": "",
    "lif_layer.c": "#define SPIKERL_SIMD 0\nstatic struct { int32_t acc[8]; } ws;\n",
    "blimp_types.h": "#define MAX_HIDDEN 4\ntypedef int16_t weight_t;\n",
    "blimp_net_step.c": (
        "#define DECAY_BITS 12\n#define HEADROOM 64\n#define ERROR_SHIFT 10\n#define TRACE_BITS 12\n"
        "#define TRACE_SHIFT 6\n#define OUT_SHIFT 16\n#define MAX_HIDDEN 4\ntypedef int16_t weight_t;\n"
        '#include "rtz_mul.c"\n#include "rhaz.c"\n#include "blimp_types.h"\n'
        "static struct { struct { uint32_t sops; } stats; } ws;\n"
    ),
}


def test_static_c_fragments_compile_as_they_are(tmp_path: Path) -> None:
    fragments = sorted(path.name for path in TEMPLATES.iterdir() if path.suffix in (".c", ".h"))
    assert fragments == sorted(FRAGMENT_PRELUDES)
    for name in fragments:
        text = (TEMPLATES / name).read_text()
        assert not any(tag in text for tag in ("{{", "{%", "{#")), name  # inlined verbatim, no template syntax
        prelude = tmp_path / f"prelude_{name}.h"
        prelude.write_text("#include <stdint.h>\n" + FRAGMENT_PRELUDES[name])
        c_build.gcc([*c_build.STRICT_FLAGS, "-Wno-unused-function", "-fsyntax-only", "-I", str(TEMPLATES),
                     "-include", str(prelude), "-x", "c", str(TEMPLATES / name)])  # fmt: skip


def test_rendered_templates_compile_and_inline_every_fragment(tmp_path: Path) -> None:
    from agents.blimp.snn import SNNArchitecture
    from agents.export.blimp_codegen import generate_blimp_c
    from agents.export.blimp_quantization import IntegerBlimpController, quantize_network

    actor = make_actor(hidden_sizes=[24, 16], readout="mean", readout_decay=0.9)  # rtz_mul in the readout
    policy = quantize_actor(actor, stats_for(actor.obs_dim))
    rng = np.random.default_rng(0)
    nets = [quantize_network(SNNArchitecture(8, variant), SNNArchitecture(8, variant).initial_genome(rng), name, 16)
            for name, variant in (("pd", "recurrent-iwta"), ("i", "lif"))]  # fmt: skip
    generated = [generate_c(policy, "tiny"), generate_c(quantize_actor(make_actor("popsan"))),
                 generate_blimp_c(IntegerBlimpController(nets, 16))]  # fmt: skip
    assert "rtz_mul(" in generated[0].source and "rtz_mul(" not in generated[1].source
    for path in TEMPLATES.iterdir():
        if path.suffix in (".c", ".h"):
            assert any(path.read_text() in g.source for g in generated), path.name
    for g in generated:
        assert "{{" not in g.source + g.header and "{%" not in g.source + g.header
        c_build.check_strict(g, tmp_path / g.prefix)  # -std=c99 -Wall -Wextra -Wconversion -Werror, no float
        if shutil.which("arm-none-eabi-gcc"):  # the packed-int16 (SXTB16/SADD16) path of lif_layer.c
            c_build.gcc(["-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror",
                         "-Os", "-c", str(tmp_path / g.prefix / f"{g.prefix}.c"), "-o", str(tmp_path / "arm.o")],
                        "arm-none-eabi-gcc")  # fmt: skip


# ---- end to end on a briefly trained run ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("export") / "run"
    overrides = tiny_td3_overrides(snn_steps=4, every=400, eval_episodes=1)
    code = train_agent.main(["train", "--algo", "td3", "--actor", "ilcsan", "--env", "InvertedPendulum-v5",
                             "--timesteps", "400", "--seed", "1", "--run-dir", str(run), *overrides])  # fmt: skip
    assert code == 0
    return run


def test_export_trained_run_end_to_end(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = train_agent.main(["export", str(trained_run), "--out", str(out), "--episodes", "3", "--qat-steps", "20"])
    assert code == 0
    for name in (
        "policy.npz",
        "spec.json",
        "spikerl_policy.c",
        "spikerl_policy.h",
        "policy.nir",
        "report.md",
        "returns.png",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["returns"]["c_matches_reference"] is True
    assert report["footprint"]["flash"] > report["footprint"]["rodata"] > 0 and report["footprint"]["bss"] > 0
    assert report["c_step_ns"] > 0 and report["qat"]["steps"] == 20
    assert report["energy"]["ratio_integer_vs_mlp"] > 0
    bounds = {b["layer"]: max(b["current_bound"], b["voltage_bound"]) for b in report["overflow_bounds"]}
    assert all(0 < peak <= bounds[name] for name, peak in report["observed_state_peaks"].items())
    # bit-exactness on thousands of observations recorded from rollouts of the trained float policy
    from experiments.export.exporter import load_run
    from experiments.export.fidelity import run_episodes

    config, model = load_run(trained_run)
    recorded = run_episodes(config.env.id, lambda obs: model.predict(obs, deterministic=True)[0], 300, 7, True)
    obs = np.stack(recorded.observations)
    assert obs.shape[0] >= 1000
    policy = IntegerPolicy.load(out / "policy.npz")
    assert_bit_exact(policy, observations_to_q16(obs), tmp_path / "c")


def test_export_cli_errors(trained_run: Path, tmp_path: Path, capsys) -> None:
    assert train_agent.main(["export", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "config.yaml is missing" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    assert train_agent.main(["export", str(bare), "--out", str(tmp_path / "o")]) == 2
    assert "model.zip is missing" in capsys.readouterr().err
    assert train_agent.main(["export", str(trained_run), "--out", str(tmp_path / "o"), "--format", "c,onnx"]) == 2
    assert "valid: c, npz, nir" in capsys.readouterr().err
