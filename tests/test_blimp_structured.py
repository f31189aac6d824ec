"""Structured SNN-I genome, pair fitness terms, pickle-free evolution checkpoints, evaluation options (control
jitter, sensor dropouts) and the Wilcoxon comparison against the PID."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from agents.blimp.closed_loop import flight_loss
from agents.blimp.integrator import integrator_genome
from agents.blimp.snn import SNNArchitecture, SNNPopulation
from agents.blimp.structured import GAIN_STEP, SharedGenome, StructuredGenome
from envs.blimp import BlimpAltitudeEnv
from experiments.blimp_config import EvolveConfig
from experiments.blimp_eval import wilcoxon_rows
from experiments.blimp_evolution import EvolutionRun, _new_strategy

TINY = [
    "--set", "network.hidden=10", "--set", "data.train_windows=3", "--set", "data.window_s=25",
    "--set", "data.test_s=40", "--set", "evolution.popsize=12", "--set", "evolution.test_every=10",
    "--set", "evolution.checkpoint_every=10", "--set", "network.genome=structured", "--no-progress",
]  # fmt: skip


def normalised(space: StructuredGenome, values: dict[str, list[float]]) -> np.ndarray:
    """Per-pair parameter values -> normalised structured genes ``[G]``."""
    parts = []
    for gene in space.genes:
        b = gene.block
        parts.append((np.asarray(values[b.name], dtype=np.float64).reshape(-1) - b.low) / (b.high - b.low))
    return np.concatenate(parts)


def test_structured_genome_expands_to_balanced_blocks() -> None:
    arch = SNNArchitecture(hidden=4, variant="lif", readout_decay_max=0.3)
    space = StructuredGenome(arch)
    assert space.size == 9 * 2 + 1 and StructuredGenome(SNNArchitecture(40)).size == 181
    values = {
        "enc_weight": [0.5, -1.0], "enc_bias": [0.3, 0.6], "enc_mem_decay": [0.95, 0.5],
        "enc_threshold": [1.0, 2.0], "hid_gain": [0.01, -0.2], "hid_syn_decay": [1.0, 0.25],
        "hid_mem_decay": [0.9, 0.0], "hid_threshold": [0.5, 4.0], "dec_weight": [0.3, -0.8], "dec_decay": [0.3],
    }  # fmt: skip
    full = arch.decode(space.expand(normalised(space, values)))
    expected = {
        "enc_weight": [0.5, -1.0], "enc_bias": [0.3, 0.6], "enc_mem_decay": [0.95, 0.95, 0.5, 0.5],
        "enc_threshold": [1.0, 1.0, 2.0, 2.0],
        "hid_weight": [[[0.01, -0.01], [-0.01, 0.01]], [[-0.2, 0.2], [0.2, -0.2]]],
        "hid_syn_decay": [1.0, 1.0, 0.25, 0.25], "hid_mem_decay": [0.9, 0.9, 0.0, 0.0],
        "hid_threshold": [0.5, 0.5, 4.0, 4.0], "dec_weight": [0.3, -0.3, -0.8, 0.8], "dec_decay": [0.3],
    }  # fmt: skip
    assert set(full) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(full[name][0].numpy(), value, atol=1e-12, err_msg=name)
    # IWTA networks expand with zero threshold-adaptation weights and decays
    iwta = SNNArchitecture(hidden=4, variant="iwta", readout_decay_max=0.3)
    decoded = iwta.decode(StructuredGenome(iwta).expand(normalised(space, values)))
    assert decoded["th_weight"].abs().max() == 0 and decoded["th_decay"].abs().max() == 0
    # the per-gene CMA step sizes: the hidden gains step GAIN_STEP x sigma0, the rest sigma0
    steps = space.steps()
    assert steps[8:10].tolist() == [GAIN_STEP, GAIN_STEP] and (np.delete(steps, [8, 9]) == 1.0).all()


def test_the_hand_set_integrator_lies_in_the_structured_space() -> None:
    arch = SNNArchitecture(hidden=40, variant="lif", readout_decay_max=0.3)
    space = StructuredGenome(arch)
    k, gain = 20, 0.075
    threshold = np.linspace(0.5, 1.5, k)
    values = {
        "enc_weight": [0.5] * k, "enc_bias": np.linspace(0.3, 0.7, k), "enc_mem_decay": [0.95] * k,
        "enc_threshold": [1.0] * k, "hid_gain": gain * threshold / (k * 0.3 * 2 * 0.5), "hid_syn_decay": [1.0] * k,
        "hid_mem_decay": [0.95] * k, "hid_threshold": threshold, "dec_weight": [0.3] * k, "dec_decay": [0.3],
    }  # fmt: skip
    np.testing.assert_allclose(space.expand(normalised(space, values))[0], integrator_genome(arch, gain), atol=1e-12)


def test_shared_genome_spreads_each_parameter_over_the_pairs() -> None:
    """x_k = c + (2 s - 1) u_k / 2 with u = (-1, 0, 1) for 3 pairs; c = 0.5, s = 0.7 gives 0.3, 0.5, 0.7."""
    arch = SNNArchitecture(hidden=6, variant="lif", readout_decay_max=0.3)
    space = SharedGenome(arch)
    assert space.size == 19 and SharedGenome(SNNArchitecture(40)).size == 19
    genes = np.full(19, 0.5)
    genes[1] = 0.7  # enc_weight spread
    genes[9] = 1.0  # hid_gain spread: the full ±0.5 -> clipped at 1 for the last pair
    genes[18] = 0.5  # readout retention 0.15
    values = space.values(genes)
    np.testing.assert_allclose(values["enc_weight"][0], -2 + 4 * np.array([0.3, 0.5, 0.7]))
    np.testing.assert_allclose(values["hid_gain"][0], -2 + 4 * np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(values["enc_bias"][0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(values["dec_decay"][0], [0.15])
    full = arch.decode(space.expand(genes))
    np.testing.assert_allclose(full["hid_weight"][0, 2].numpy(), [[2.0, -2.0], [-2.0, 2.0]])
    assert space.steps()[8:10].tolist() == [GAIN_STEP, GAIN_STEP]


def test_balanced_pairs_do_not_drift_at_zero_error() -> None:
    """With τ_syn = 1 a pair's hidden currents are a (n+ - n-) and -a (n+ - n-): exactly 0 for e = 0, whatever the
    gene values; a constant error winds them up with opposite signs."""
    arch = SNNArchitecture(hidden=10, variant="lif", readout_decay_max=0.3)
    space = StructuredGenome(arch)
    genes = space.initial_genome(np.random.default_rng(3))
    k = 5
    genes[2 * k : 3 * k] = 0.95  # encoding τ_mem: every pair fires on its bias alone
    genes[5 * k : 6 * k] = 1.0  # hidden τ_syn = 1: the synapses integrate
    net = SNNPopulation(arch, space.expand(genes))
    net.run(np.zeros(300))
    assert (net.spike_counts["encoding"][0] > 0).all()
    torch.testing.assert_close(net.hidden.current, torch.zeros_like(net.hidden.current), atol=1e-12, rtol=0)
    net.reset()
    net.run(np.full(200, 0.3))
    current = net.hidden.current[0].view(-1, 2)
    torch.testing.assert_close(current[:, 0], -current[:, 1], atol=1e-12, rtol=0)
    assert current.abs().max() > 0.01


def test_short_structured_evolution_improves_fitness_with_per_gene_steps(tmp_path: Path) -> None:
    run = tmp_path / "structured"
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 30, *TINY) == 0
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert float(rows[-1]["best_test_loss"]) < float(rows[0]["best_test_loss"]) - 0.05
    config = EvolutionRun(run).load_config()
    space = config.network.search_space()
    best = np.load(run / "best.npz")
    assert best["genes"].shape == (space.size,) and best["genome"].shape == (config.network.architecture().size,)
    np.testing.assert_array_equal(space.expand(best["genes"])[0], best["genome"])
    es = _new_strategy(config, space.initial_genome(np.random.default_rng(0)))
    np.testing.assert_allclose(es.sigma_vec.scaling, space.steps())  # CMA_stds reach pycma
    # a structured run can start from another structured run (its search genes)
    code = run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", tmp_path / "again",
                   "--generations", 0, *TINY, "--set", f"fitness.init={run}")  # fmt: skip
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "best.npz")["genes"], best["genes"])


def test_an_interrupted_run_resumes_into_the_uninterrupted_search(tmp_path: Path) -> None:
    """The checkpoint holds no pickled pycma object: resuming replays ask/tell with the saved fitness values, and
    the search goes on exactly as if it had never stopped."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", whole, "--generations", 20,
                   *TINY) == 0  # fmt: skip
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", split, "--generations", 10,
                   *TINY) == 0  # fmt: skip
    assert run_cli("evolve", "--resume", split, "--generations", 20, "--no-progress") == 0
    for name in ("genome", "genes", "test_loss"):
        np.testing.assert_array_equal(np.load(split / "best.npz")[name], np.load(whole / "best.npz")[name])
    a, b = EvolutionRun(whole).load_checkpoint(), EvolutionRun(split).load_checkpoint()
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not list(split.glob("*.pkl"))


class Payload:
    """Unpickling this writes a marker file: the proof that a loader executed pickle code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


@pytest.mark.parametrize("target", ["checkpoint.pkl", "checkpoint.npz"])
def test_a_malicious_pickle_checkpoint_is_not_executed(target: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 10, *TINY) == 0
    marker = tmp_path / "pwned"
    if target == "checkpoint.pkl":  # an old-style checkpoint in place of the JSON + NPZ pair
        (run / "checkpoint.json").unlink()
        (run / "checkpoint.npz").unlink()
    (run / target).write_bytes(pickle.dumps(Payload(marker)))
    assert run_cli("evolve", "--resume", run) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert err.count("\n") == 1 and (
        "is a pickle (loading it could run arbitrary code), so it is not loaded" in err
        if target == "checkpoint.pkl"
        else "checkpoint.json is corrupt" in err
    )


def test_pair_fitness_adds_overshoot_and_flips() -> None:
    reference = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0])
    z = np.array([[1.0, 1.0, 1.5, 2.3, 2.1, 1.2, 0.9]]).T  # up step overshoots 0.3, down step 0.1
    base = flight_loss(z, reference, [(0, 2), (2, 5), (5, 7)], window=1)
    error = np.abs(reference - z[:, 0])
    assert base == pytest.approx([error.mean() + (0.0 + 0.1 + 0.1) / 3])
    full = flight_loss(z, reference, [(0, 2), (2, 5), (5, 7)], 1, 1.0, 2.0, np.array([4.0]), 0.5)
    assert full == pytest.approx(base + 2.0 * (0.3 + 0.1) / 2 + 0.5 * 4.0)
    with pytest.raises(ValueError, match="flip_weight > 0 needs flips_per_minute"):
        flight_loss(z, reference, [(0, 7)], 1, flip_weight=1.0)


def test_pair_fitness_options_are_checked() -> None:
    from experiments.config import ConfigError

    with pytest.raises(ConfigError, match="fitness.overshoot_weight and flip_weight only apply"):
        EvolveConfig.load(None, {"fitness": {"overshoot_weight": 1.0}})
    with pytest.raises(ConfigError, match="network.genome: unknown 'sparse'; valid: full, structured"):
        EvolveConfig.load(None, {"network": {"genome": "sparse"}})
    with pytest.raises(ConfigError, match="fitness.init: integrator needs network.genome: full"):
        from experiments.blimp_evolution import initial_genome

        config = EvolveConfig.load(None, {"network": {"genome": "structured"}, "fitness": {"init": "integrator"}})
        initial_genome(config, np.random.default_rng(0))
    config = EvolveConfig.load("experiments/blimp_i_structured.yaml")
    assert config.network.genome == "structured" and config.fitness.init is None
    assert config.fitness.overshoot_weight > 0 and config.fitness.flip_weight > 0


def test_control_jitter_long_ticks_and_dropouts() -> None:
    quiet = {"lidar_noise": 0.0, "lidar_bias": 0.0}
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, params={**quiet, "long_tick_probability": 1.0})
    env.reset(seed=0)
    env.step([0.0])
    assert env.data.time == pytest.approx(0.3)  # every period lasts 0.3 s = 60 physics steps
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.0, params={**quiet, "control_jitter": 0.02})
    env.reset(seed=0)
    times = []
    for _ in range(200):
        env.step([0.0])
        times.append(env.data.time)
    periods = np.round(np.diff([0.0, *times]), 6)
    assert set(periods) <= {0.08, 0.085, 0.09, 0.095, 0.1, 0.105, 0.11, 0.115, 0.12} and len(set(periods)) >= 7
    env = BlimpAltitudeEnv(profile="paper-pd", step=0.5, params={**quiet, "dropout_probability": 1.0})
    observation, _ = env.reset(seed=0)
    for _ in range(50):  # full thrust up: the blimp rises but the held reading does not change
        again, _, _, _, info = env.step([1.0])
    assert again[0] == observation[0] and info["z"] > 1.6
    with pytest.raises(ValueError, match="dropout_probability must be in \\[0, 1\\], got 2"):
        BlimpAltitudeEnv(params={"dropout_probability": 2})


def test_wilcoxon_against_the_pid_pairs_episodes_by_seed() -> None:
    from scipy.stats import wilcoxon

    pid = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    arm = [1.5, 2.1, 3.7, 4.2, 4.7, 7.0]
    rows = [{"profile": "p", "arm": "pid", "seed": s, "sse_cm": v} for s, v in enumerate(pid)]
    rows += [{"profile": "p", "arm": "pair", "seed": s, "sse_cm": v} for s, v in reversed(list(enumerate(arm)))]
    (result,) = wilcoxon_rows(rows, ("sse_cm",))
    assert result["n"] == 6 and result["arm_median"] == pytest.approx(np.median(arm))
    assert result["p_value"] == pytest.approx(wilcoxon(arm, pid).pvalue)
    # |d| ranks 4, 1, 5, 2, 3, 6; W- = 3 (only 4.7 < 5); exact n = 6: P(W <= 3) = 5/64 per side
    assert wilcoxon(arm, pid).pvalue == pytest.approx(2 * 5 / 64)


def test_eval_blimp_with_jitter_dropouts_and_wilcoxon(tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    code = run_cli("eval-blimp", "--arms", "pid,pd", "--profiles", "disturb", "--repeats", 2, "--jitter", 0.01,
                   "--long-ticks", 0.02, "--dropout", 0.05, "--out", out)  # fmt: skip
    assert code == 0
    suffix = "_jitter0.01_long0.02_dropout0.05"
    rows = {r["arm"]: r for r in csv.DictReader((out / f"comparison{suffix}.csv").open())}
    assert set(rows) == {"pid", "pd"} and float(rows["pid"]["sse_cm_mean"]) < 5.0 < float(rows["pd"]["sse_cm_mean"])
    episodes = list(csv.DictReader((out / f"episodes{suffix}.csv").open()))
    assert [(r["arm"], int(r["seed"])) for r in episodes] == [("pid", 1000), ("pid", 1001), ("pd", 1000), ("pd", 1001)]
    tests = {r["metric"]: r for r in csv.DictReader((out / f"wilcoxon{suffix}.csv").open())}
    assert tests["sse_cm"]["arm"] == "pd" and int(tests["sse_cm"]["n"]) == 2
    assert "| disturb | pd | 2 |" in (out / f"wilcoxon{suffix}.md").read_text()
    assert run_cli("eval-blimp", "--arms", "pid,snn-pd", "--out", tmp_path / "x") == 2
    assert "unknown arm(s) snn-pd; available with these runs: pid, pd" in capsys.readouterr().err
    assert run_cli("eval-blimp", "--jitter", 0.5, "--out", tmp_path / "y") == 2
    assert "control_jitter must be in [0, control_dt), got 0.5" in capsys.readouterr().err


def test_coevolution_searches_both_networks_and_keeps_the_partner_as_a_run(tmp_path: Path, capsys) -> None:
    from agents.blimp.closed_loop import ClosedLoopEvaluator
    from experiments.blimp_evolution import search_space

    closed_loop = [
        "--set", "data.train_windows=2", "--set", "data.window_s=50", "--set", "data.test_s=50",
        "--set", "evolution.popsize=6", "--set", "evolution.test_every=2", "--set", "evolution.checkpoint_every=2",
        "--set", "network.hidden=10", "--no-progress",
    ]  # fmt: skip
    partner = tmp_path / "snn_i"  # a shared-genome SNN-I: its start genes, scored with the committed SNN-PD
    assert run_cli("evolve", "--config", "experiments/blimp_i_shared.yaml", "--run-dir", partner,
                   "--generations", 0, *closed_loop) == 0  # fmt: skip
    pair = tmp_path / "pair"
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", pair, "--generations", 4,
                   "--set", "fitness.kind=closed-loop", "--set", f"fitness.partner={partner}",
                   "--set", "fitness.coevolve=true", "--set", "fitness.overshoot_weight=1",
                   *closed_loop) == 0  # fmt: skip
    run, original = EvolutionRun(pair), EvolutionRun(partner)
    config = run.load_config()
    space = search_space(config)
    own_size, partner_size = config.network.search_space().size, original.load_config().network.search_space().size
    assert space.size == own_size + partner_size == 361 // 4 + 1 + 19  # 10 hidden: 91 full genes + 19 shared
    state = run.load_checkpoint()
    np.testing.assert_array_equal(state.x0[own_size:], original.load_best_genes())  # the partner starts at its best
    assert np.abs(state.mean[own_size:] - state.x0[own_size:]).max() > 1e-3  # ... and evolves
    np.testing.assert_allclose(np.asarray(_new_strategy(config, state.x0).sigma_vec.scaling), space.steps())
    # the best pair: best.npz (own) + partner/best.npz, whose closed-loop test loss is the recorded one
    partner_run = run.partner_run
    assert partner_run.load_config().network.genome == "shared"
    assert json_of(partner_run.metadata_file)["coevolved_in"] == str(pair)
    partner_genes = np.load(partner_run.best_file)["genes"]
    np.testing.assert_array_equal(search_space(original.load_config()).expand(partner_genes)[0],
                                  partner_run.load_best_genome())  # fmt: skip
    partner_net = (partner_run.load_config().network.architecture(), partner_run.load_best_genome())
    d, f = config.data, config.fitness
    evaluator = ClosedLoopEvaluator(config.network.architecture(), partner_net, d.window_s, d.test_s, d.seed,
                                    d.net_weight, f.steady_state_weight, f.overshoot_weight)  # fmt: skip
    recorded = float(np.load(run.best_file)["test_loss"])
    assert evaluator.evaluate(run.load_best_genome()[None, :], None)[0][0] == pytest.approx(recorded, rel=1e-12)
    # a co-evolution needs a partner
    assert run_cli("evolve", "--run-dir", tmp_path / "lonely", "--set", "fitness.kind=closed-loop",
                   "--set", "fitness.coevolve=true") == 2  # fmt: skip
    assert "fitness.coevolve needs fitness.partner" in capsys.readouterr().err
    # a partner whose best genes do not fit its own search space (e.g. written by another version)
    best = dict(np.load(partner / "best.npz"))
    np.savez(partner / "best.npz", **{**best, "genes": best["genes"][:5]})
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", tmp_path / "misfit",
                   "--set", "fitness.kind=closed-loop", "--set", f"fitness.partner={partner}",
                   "--set", "fitness.coevolve=true", *closed_loop) == 2  # fmt: skip
    assert "holds 5 search genes, its config's network.genome has 19" in capsys.readouterr().err
    assert not (tmp_path / "misfit").exists()


def json_of(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def test_pair_training_flights_hold_one_net_weight_per_flight() -> None:
    from agents.blimp.closed_loop import ClosedLoopEvaluator
    from envs.blimp.profiles import i_training, make_plan, pair_training

    per_step = i_training(np.random.default_rng(3), 0.1, 250.0, net_weight=0.1)
    per_flight = pair_training(np.random.default_rng(3), 0.1, 250.0, net_weight=0.1)
    np.testing.assert_array_equal(per_flight.reference, per_step.reference)  # the same set-points
    assert per_flight.holds == per_step.holds and len(per_flight.holds) == 5
    assert np.unique(per_flight.net_weight_offset).size == 1 and abs(per_flight.net_weight_offset[0]) <= 0.1
    assert per_flight.buoyancy == "negative" and per_step.buoyancy == "neutral"  # pair flights: as paper-full
    assert np.unique(per_step.net_weight_offset).size == 5
    assert make_plan("pair-training", np.random.default_rng(3), 0.1, 250.0).reference.shape == (2500,)
    with pytest.raises(ValueError, match="unknown closed-loop flights 'gusty'; valid: i-training, pair-training"):
        ClosedLoopEvaluator(SNNArchitecture(10), None, 50, 50, 0, 0.1, flights="gusty")
    with pytest.raises(Exception, match="fitness.flights only applies to fitness.kind: closed-loop"):
        EvolveConfig.load(None, {"fitness": {"flights": "pair-training"}})


def test_a_generation_can_average_several_training_flights(tmp_path: Path, capsys) -> None:
    """``evolution.windows_per_generation`` draws distinct windows; the fitness told to CMA-ES is their mean."""
    from agents.blimp.closed_loop import ClosedLoopEvaluator

    run = tmp_path / "averaged"
    flags = [
        "--set", "fitness.kind=closed-loop", "--set", "data.train_windows=3", "--set", "data.window_s=50",
        "--set", "data.test_s=50", "--set", "evolution.popsize=4", "--set", "network.hidden=4",
        "--set", "evolution.windows_per_generation=2", "--no-progress",
    ]  # fmt: skip
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 1, *flags) == 0
    config = EvolutionRun(run).load_config()
    state = EvolutionRun(run).load_checkpoint()
    genomes = np.asarray(_new_strategy(config, state.x0).ask())  # generation 1's individuals (pycma is seeded)
    d = config.data
    evaluator = ClosedLoopEvaluator(config.network.architecture(), None, d.window_s, d.test_s, d.seed, d.net_weight)
    per_window = [evaluator.evaluate(genomes, w)[0] for w in range(3)]
    pairs = [np.mean([per_window[a], per_window[b]], axis=0) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert sum(np.allclose(state.losses[0], pair, rtol=1e-12) for pair in pairs) == 1
    assert not any(np.allclose(state.losses[0], single, rtol=1e-6) for single in per_window)
    assert run_cli("evolve", "--run-dir", tmp_path / "more", *flags, "--set", "evolution.windows_per_generation=4") == 2
    assert "evolution.windows_per_generation (4) exceeds data.train_windows (3)" in capsys.readouterr().err


def test_the_test_loss_can_average_several_held_out_flights() -> None:
    from agents.blimp.closed_loop import TEST_SEED_OFFSET, ClosedLoopEvaluator
    from experiments.config import ConfigError

    arch = SNNArchitecture(4)
    genomes = arch.initial_genome(np.random.default_rng(0))[None, :].repeat(2, axis=0)
    genomes[1] = arch.initial_genome(np.random.default_rng(1))
    three = ClosedLoopEvaluator(arch, None, 50, 50, seed=5, net_weight=0.1, test_flights=3)
    one = ClosedLoopEvaluator(arch, None, 50, 50, seed=5, net_weight=0.1)
    flights = [one.evaluate(genomes, TEST_SEED_OFFSET + k)[0] for k in range(3)]  # window k's seed: seed + k
    np.testing.assert_allclose(three.evaluate(genomes, None)[0], np.mean(flights, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(one.evaluate(genomes, None)[0], flights[0])
    with pytest.raises(ConfigError, match="data.test_flights only applies to fitness.kind: closed-loop"):
        EvolveConfig.load(None, {"data": {"test_flights": 2}})
