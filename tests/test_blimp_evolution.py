"""Blimp SNN evolution and CLI: a short CMA-ES run lowers the imitation loss, resumes from its checkpoint, and the
closed-loop comparison and the RL baseline path run end to end; bad input fails with one clear line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from experiments.blimp_config import EvolveConfig
from experiments.blimp_evolution import EvolutionRun

TINY = [
    "--set", "network.hidden=10", "--set", "data.train_windows=3", "--set", "data.window_s=25",
    "--set", "data.test_s=40", "--set", "evolution.popsize=16", "--set", "evolution.test_every=10",
    "--set", "evolution.checkpoint_every=10", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> Path:
    """40 generations of the PD imitation, interrupted after 20 and resumed."""
    run = tmp_path_factory.mktemp("evolve") / "pd"
    assert run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 20, *TINY) == 0
    assert run_cli("evolve", "--resume", run, "--generations", 40, "--no-progress") == 0
    return run


def progress(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "progress.csv").open()))


def test_short_evolution_lowers_the_imitation_loss(evolved: Path) -> None:
    rows = progress(evolved)
    assert [int(r["generation"]) for r in rows] == [0, 10, 20, 30, 40]  # resumed without duplicates or gaps
    initial, final = float(rows[0]["best_test_loss"]), float(rows[-1]["best_test_loss"])
    assert final < initial - 0.1
    best = np.load(evolved / "best.npz")
    assert float(best["test_loss"]) == pytest.approx(final)
    assert list((evolved / "tensorboard").rglob("events.out.tfevents.*"))
    config = EvolutionRun(evolved).load_config()
    assert config.network.hidden == 10 and config.evolution.generations == 20


def test_resume_continues_the_same_search(evolved: Path) -> None:
    run = EvolutionRun(evolved)
    state = run.load_checkpoint()
    assert state.generation == 40 and state.losses.shape == (40, 16)
    from experiments.blimp_evolution import restore_strategy

    assert restore_strategy(run.load_config(), state).countiter == 40


def test_run_metadata_and_an_existing_run_is_not_overwritten(evolved: Path, capsys) -> None:
    import json

    meta = json.loads((evolved / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["data_seed"] == 0 and meta["git_commit"] and meta["cpu_count"] >= 1
    assert meta["versions"]["cma"] not in ("", "not installed") and "torch" in meta["versions"]
    before = (evolved / "config.yaml").read_text()
    assert run_cli("evolve", "--run-dir", evolved, "--generations", 1, *TINY) == 2
    assert f"{evolved} already holds a run; use --resume {evolved} or another --run-dir" in capsys.readouterr().err
    assert (evolved / "config.yaml").read_text() == before


def test_crashed_run_resumes_from_its_last_checkpoint(evolved: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(evolved, copy)
    run = EvolutionRun(copy)
    state = run.load_checkpoint()
    # as if the process died after writing rows up to 40 but checkpointing at 30
    state.generation, state.losses = 30, state.losses[:30]
    from experiments.blimp_evolution import _new_strategy

    es = _new_strategy(run.load_config(), state.x0)
    for losses in state.losses:  # pycma's mean at generation 30
        es.tell(es.ask(), losses.tolist())
    state.mean = np.asarray(es.mean)
    run.save_checkpoint(state)
    assert run_cli("evolve", "--resume", copy, "--generations", 40, "--no-progress") == 0
    assert [int(r["generation"]) for r in progress(copy)] == [0, 10, 20, 30, 40]


def test_closed_loop_comparison_writes_table_and_plots(evolved: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    code = run_cli("eval-blimp", "--pd", evolved, "--i", evolved, "--profiles", "paper-pd", "--repeats", 1,
                   "--out", out)  # fmt: skip
    assert code == 0
    rows = {r["arm"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert set(rows) == {"pid", "pd", "snn-pd", "snn-pd+i", "pd+snn-i", "snn-pd+snn-i"}
    assert int(rows["pid"]["episodes"]) == 5  # five paper steps x 1 repeat
    assert float(rows["pid"]["sse_cm_mean"]) < 5.0
    assert float(rows["snn-pd"]["spikes_per_s_hidden_mean"]) > 0 and float(rows["pid"]["sops_per_s_mean"]) == 0
    assert float(rows["snn-pd+i"]["spikes_per_s_hidden_mean"]) > 0  # the SNN-PD's spikes; the exact I adds none
    assert (out / "flight_paper-pd.png").stat().st_size > 10_000 and (out / "learning_curves.png").is_file()
    assert "| paper-pd | snn-pd |" in (out / "comparison.md").read_text()


def test_rl_baseline_trains_on_the_blimp_environment(tmp_path: Path) -> None:
    run = tmp_path / "rl"
    overrides = ["--set", "actor.hidden_sizes=[16, 16]", "--set", "actor.timesteps=3", "--set",
                 "algo.learning_starts=50", "--set", "algo.batch_size=16", "--set", "algo.gradient_steps=5",
                 "--set", "train.eval_freq=200", "--set", "train.eval_episodes=1", "--no-progress"]  # fmt: skip
    code = run_cli("train", "--env", "spikerl/BlimpAltitude-v0", "--actor", "ilcsan", "--algo", "td3",
                   "--timesteps", 200, "--run-dir", run, *overrides)  # fmt: skip
    assert code == 0 and (run / "model.zip").is_file()
    out = tmp_path / "cmp"
    assert run_cli("eval-blimp", "--rl", run, "--profiles", "disturb", "--repeats", 1, "--out", out) == 0
    rows = {r["arm"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert float(rows["rl"]["sops_per_s_mean"]) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "network.variant=alif"], "network.variant: unknown 'alif'; valid: lif, recurrent, iwta"),
        (["--set", "evolution.popsize=2"], "evolution.popsize must be >= 4"),
        (["--set", "data.targets=pd"], "unknown key(s) in data: targets"),
        (["--set", "solver.popsize=8"], "unknown section 'solver'; valid: network, data, evolution"),
    ],
)
def test_bad_evolve_config_is_one_error_line(args, message, tmp_path: Path, capsys) -> None:
    assert run_cli("evolve", "--run-dir", tmp_path / "x", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_corrupt_checkpoint_and_unknown_profile_are_reported(evolved: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text((evolved / "config.yaml").read_text())
    (broken / "checkpoint.json").write_text("{not json")
    assert run_cli("evolve", "--resume", broken) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint") and "checkpoint.json is corrupt" in err
    assert run_cli("eval-blimp", "--profiles", "stairs", "--out", tmp_path / "o") == 2
    assert "unknown reference profile 'stairs'; valid: paper-pd" in capsys.readouterr().err


def test_config_defaults_match_the_paper() -> None:
    config = EvolveConfig.load("experiments/blimp_i.yaml")
    assert config.network.variant == "iwta" and config.network.readout_decay_max == 0.3
    assert config.evolution.popsize == 50 and config.data.target == "i"


def test_flight_loss_is_tracking_mae_plus_steady_state_error() -> None:
    from agents.blimp.closed_loop import flight_loss

    reference = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    z = np.array([[0.0, 0.5, 0.9, 1.0, 1.8, 1.9]]).T  # |e| = 1, .5, .1, 1, .2, .1
    # MAE 2.9 / 6; steady state (last 2 ticks of each hold): (0.5 + 0.1) / 2 and (0.2 + 0.1) / 2
    expected = 2.9 / 6 + (0.3 + 0.15) / 2
    assert flight_loss(z, reference, [(0, 3), (3, 6)], window=2) == pytest.approx([expected])
    assert flight_loss(z, reference, [(0, 3), (3, 6)], 2, steady_weight=3) == pytest.approx([2.9 / 6 + 0.675])


def test_closed_loop_fitness_of_a_batch_equals_each_flight_alone(evolved: Path) -> None:
    from agents.blimp.closed_loop import ClosedLoopEvaluator

    run = EvolutionRun(evolved)
    arch = run.load_config().network.architecture()
    partner = (arch, run.load_best_genome())
    genomes = np.stack([arch.initial_genome(np.random.default_rng(seed)) for seed in range(3)])
    evaluator = ClosedLoopEvaluator(arch, partner, flight_s=50, test_s=50, seed=0, net_weight=0.1)
    batch = evaluator.evaluate(genomes, 1)[0]
    alone = [evaluator.evaluate(g[None, :], 1)[0][0] for g in genomes]
    assert batch == pytest.approx(alone, abs=1e-12)
    assert len(set(batch.round(6))) == 3 and (batch < 2.0).all()


def test_closed_loop_fitness_with_the_pids_exact_i_as_partner_equals_the_summed_flight(evolved: Path) -> None:
    """fitness.partner: pid-i flies each network with its own float PID I term: the loss equals that of flying
    SummedController(network, PID(0, ki, 0)) through the env on the same plan."""
    from agents.blimp.closed_loop import STEADY_WINDOW_S, ClosedLoopEvaluator, flight_loss
    from agents.blimp.controllers import SNNController, SummedController, fly
    from agents.blimp.pid import PID, PIDGains
    from envs.blimp.env import BlimpAltitudeEnv
    from envs.blimp.profiles import pair_training

    run = EvolutionRun(evolved)
    arch, genome = run.load_config().network.architecture(), run.load_best_genome()
    i_term = PIDGains(kp=0.0, ki=0.75, kd=0.0)
    evaluator = ClosedLoopEvaluator(arch, i_term, flight_s=100, test_s=50, seed=3, net_weight=0.06,
                                    overshoot_weight=2.0, flights="pair-training")  # fmt: skip
    loss = evaluator.evaluate(genome[None, :], 0)[0][0]
    env = BlimpAltitudeEnv(terminate_on_contact=False)
    plan = pair_training(np.random.default_rng(3), env.params.control_dt, 100, net_weight=0.06)
    flight = fly(env, SummedController(SNNController(arch, genome), PID(i_term)), 3, {"plan": plan})
    window = round(STEADY_WINDOW_S / env.params.control_dt)
    expected = flight_loss(flight["z"][:, None], plan.reference, list(plan.holds), window, overshoot_weight=2.0)
    assert loss == pytest.approx(expected[0], abs=1e-12)


def test_closed_loop_evolution_starts_from_a_run_and_flies_with_a_partner(evolved: Path, tmp_path: Path) -> None:
    from agents.blimp.closed_loop import ClosedLoopEvaluator

    run = tmp_path / "closed"
    code = run_cli("evolve", "--config", "experiments/blimp_pd.yaml", "--run-dir", run, "--generations", 4, *TINY,
                   "--set", "fitness.kind=closed-loop", "--set", f"fitness.partner={evolved}",
                   "--set", f"fitness.init={evolved}", "--set", "data.train_windows=2", "--set", "data.window_s=50",
                   "--set", "data.test_s=50", "--set", "evolution.popsize=6", "--set", "evolution.test_every=2",
                   "--set", "data.net_weight=0.06")  # fmt: skip
    assert code == 0 and not (run / "data.npz").exists()
    rows = progress(run)
    assert [int(r["generation"]) for r in rows] == [0, 2, 4]
    start = EvolutionRun(evolved).load_best_genome()
    arch = EvolutionRun(run).load_config().network.architecture()
    evaluator = ClosedLoopEvaluator(arch, (arch, start), flight_s=50, test_s=50, seed=0, net_weight=0.06)
    assert float(rows[0]["test_loss_cma_mean"]) == pytest.approx(evaluator.evaluate(start[None, :], None)[0][0])
    assert float(rows[-1]["best_test_loss"]) <= float(rows[0]["best_test_loss"])


def test_closed_loop_options_are_checked(evolved: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("evolve", "--run-dir", tmp_path / "a", "--set", f"fitness.partner={evolved}") == 2
    assert "fitness.partner only applies to fitness.kind: closed-loop" in capsys.readouterr().err
    assert run_cli("evolve", "--run-dir", tmp_path / "b", "--set", f"fitness.init={evolved}") == 2
    assert "holds a genome of 91 genes, the lif network with 40 hidden neurons has 361" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # checked before the run directory is written
    assert run_cli("evolve", "--run-dir", tmp_path / "c", "--set", "data.net_weight=0.5") == 2
    assert "data.net_weight must be in [0, 0.2] N, got 0.5" in capsys.readouterr().err
    assert run_cli("evolve", "--run-dir", tmp_path / "d", "--set", "fitness.steady_state_weight=-1") == 2
    assert "fitness.steady_state_weight must be >= 0, got -1.0" in capsys.readouterr().err
    pid_partner = ["--set", "fitness.kind=closed-loop", "--set", "fitness.partner=pid-i",
                   "--set", "fitness.coevolve=true"]  # fmt: skip
    assert run_cli("evolve", "--run-dir", tmp_path / "e", *pid_partner) == 2
    assert "fitness.partner: pid-i has nothing to evolve" in capsys.readouterr().err
    from agents.blimp.pid import PIDGains
    from experiments.blimp_evolution import load_partner

    closed = {"kind": "closed-loop"}
    parts = {name: load_partner(EvolveConfig(fitness={**closed, "partner": name})) for name in ("pid-i", "pid-pd")}
    assert parts == {"pid-i": PIDGains(0.0, 0.75, 0.0), "pid-pd": PIDGains(9.0, 0.0, 14.0)}  # the deployed PID's parts


def test_zero_generation_run_scores_and_keeps_the_hand_set_integrator(evolved: Path, tmp_path: Path) -> None:
    from agents.blimp.closed_loop import ClosedLoopEvaluator
    from agents.blimp.integrator import integrator_genome

    run = tmp_path / "integrator"
    code = run_cli("evolve", "--config", "experiments/blimp_i_integrator.yaml", "--run-dir", run, "--generations", 0,
                   "--set", f"fitness.partner={evolved}", "--set", "data.train_windows=2", "--set", "data.test_s=50",
                   "--no-progress")  # fmt: skip
    assert code == 0
    rows = progress(run)
    assert [int(r["generation"]) for r in rows] == [0]
    config = EvolutionRun(run).load_config()
    arch = config.network.architecture()
    genome = EvolutionRun(run).load_best_genome()
    assert np.array_equal(genome, integrator_genome(arch, 0.75 * 0.1))  # data.ki x control period
    partner_run = EvolutionRun(evolved)
    partner = (partner_run.load_config().network.architecture(), partner_run.load_best_genome())
    evaluator = ClosedLoopEvaluator(arch, partner, flight_s=100, test_s=50, seed=7, net_weight=0.1,
                                    steady_weight=3.0)  # fmt: skip
    assert float(rows[0]["best_test_loss"]) == pytest.approx(evaluator.evaluate(genome[None, :], None)[0][0])
    assert run_cli("evolve", "--run-dir", tmp_path / "bad", "--generations", -1) == 2
    assert run_cli("evolve", "--config", "experiments/blimp_i_integrator.yaml", "--run-dir", tmp_path / "ki",
                   "--set", "data.ki=500") == 2  # fmt: skip
    assert not (tmp_path / "ki").exists()
