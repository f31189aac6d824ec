"""Experiment suites: validation, the Ray Tune runner on the smoke suite (fresh, resumed, failed and
finished trials), and the aggregation math (mean ± std over seeds, the papers' max statistic, APR)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from experiments import run as runner
from experiments.aggregate import (
    Group,
    SeedResult,
    average_performance_ratio,
    markdown_report,
    mean_std,
    paper_max,
    performance_ratios,
    update_readme,
)
from experiments.config import ConfigError
from experiments.results import RunCurve
from experiments.run_dir import RunDirectory
from experiments.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent


# ---- aggregation math on hand-made data --------------------------------------------------------------
def seed(env: str, actor: str, seed_: int, means: list[float], reruns: list[float] = ()) -> SeedResult:
    curve = RunCurve(env, actor, [10 * (i + 1) for i in range(len(means))], means, [0.0] * len(means), 1.0, 0.0,
                     actor=actor, algo="td3", seed=seed_)  # fmt: skip
    return SeedResult(curve, list(reruns))


def test_paper_max_and_mean_std() -> None:
    assert paper_max([1.0, 5.0, 3.0], [4.0]) == 5.0
    assert paper_max([1.0, 5.0, 3.0], [7.5, 2.0]) == 7.5
    assert mean_std([2.0, 4.0]) == (3.0, pytest.approx(2**0.5))  # sample std, ddof = 1
    assert mean_std([3.0]) == (3.0, 0.0)
    with pytest.raises(ValueError):
        paper_max([], [1.0])


def test_statistics_ratios_and_apr() -> None:
    groups = [
        Group("A", "td3", "sb3", "mlp", [seed("A", "mlp", 0, [50, 100]), seed("A", "mlp", 1, [80, 300], [400])]),
        Group("A", "td3", "sb3", "snn", [seed("A", "snn", 0, [100, 200]), seed("A", "snn", 1, [100, 200])]),
        Group("B", "td3", "sb3", "mlp", [seed("B", "mlp", 0, [1000])]),
        Group("B", "td3", "sb3", "snn", [seed("B", "snn", 0, [500], [900])]),
    ]
    mlp_a, snn_a = groups[0], groups[1]
    assert mlp_a.stat("final") == (200.0, pytest.approx(141.4213562))
    assert mlp_a.stat("best") == (200.0, pytest.approx(141.4213562))
    assert mlp_a.stat("max") == (250.0, pytest.approx(212.1320344))  # max(100) and max(300, rerun 400)
    assert snn_a.stat("final") == (200.0, 0.0)
    final = performance_ratios(groups, "mlp", "final")
    assert final[("A", "td3", "sb3", "snn")] == pytest.approx(1.0) and final[("B", "td3", "sb3", "snn")] == 0.5
    maxed = performance_ratios(groups, "mlp", "max")
    assert maxed[("A", "td3", "sb3", "snn")] == pytest.approx(200 / 250)
    assert maxed[("B", "td3", "sb3", "snn")] == pytest.approx(0.9)
    apr = average_performance_ratio(final)
    assert apr[("td3", "sb3", "snn")] == (pytest.approx(0.75), 2)
    assert apr[("td3", "sb3", "mlp")] == (pytest.approx(1.0), 2)
    assert average_performance_ratio(maxed)[("td3", "sb3", "snn")][0] == pytest.approx(0.85)
    report = markdown_report(groups, "mlp")
    assert "| A | td3 | mlp | 0,1 | 20 | 200.0 ± 141.4 | 200.0 ± 141.4 | 250.0 ± 212.1 | 1.00 / 1.00 |" in report
    assert "| td3 | snn | 2 | 75.0% | 85.0% |" in report
    assert mlp_a.means == [65.0, 200.0] and mlp_a.curve_steps == [10, 20]  # the band's centre


def test_update_readme_replaces_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    update_readme(readme, "| new |\n")
    assert readme.read_text() == "intro\n<!-- results:start -->\n| new |\n<!-- results:end -->\noutro\n"
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(tmp_path / "bare.md", "x")


# ---- suite files -------------------------------------------------------------------------------------
def write_suite(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    data.update(out=str(tmp_path / "runs"), results=str(tmp_path / "results"), **changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_suite_files_expand_to_trials(tmp_path: Path) -> None:
    smoke = load_suite(ROOT / "experiments" / "smoke.yaml").trials()
    assert [t.name for t in smoke] == [
        "InvertedPendulum-v5_mlp_td3_s0", "InvertedPendulum-v5_mlp_td3_s1",
        "InvertedPendulum-v5_ilcsan_td3_s0", "InvertedPendulum-v5_ilcsan_td3_s1",
    ]  # fmt: skip
    assert smoke[0].config["train"]["timesteps"] == 400 and smoke[0].config["actor"]["hidden_sizes"] == [32, 32]
    budget = load_suite(ROOT / "experiments" / "cpu_budget.yaml")
    trials = budget.trials({"env": ["Hopper-v5"], "actor": ["mlp", "ilcsan"], "seed": ["1"]})
    assert [t.name for t in trials] == ["Hopper-v5_mlp_td3_s1", "Hopper-v5_ilcsan_td3_s1"]
    assert trials[0].config["algo"]["actor_learning_rate"] == 1e-3  # per-actor override (MLP baseline)
    assert trials[1].config["algo"]["actor_learning_rate"] == 1e-4 and trials[1].config["train"]["timesteps"] == 100_000
    paper = load_suite(ROOT / "experiments" / "paper_td3.yaml")
    assert len(paper.trials()) == 4 * 4 * 5  # envs × actors (mlp, popsan, ilcsan, noisysan) × seeds
    noisy = paper.trials({"env": ["Ant-v5"], "actor": ["noisysan"], "seed": ["4"]})[0]
    assert noisy.config["algo"]["action_noise"] == 0.0 and noisy.config["noise"]["beta"] == 1.0


def test_malformed_suites_fail_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown suite key.*colour"):
        load_suite(write_suite(tmp_path, colour="red"))
    with pytest.raises(ConfigError, match="unknown grid axis.*lr"):
        load_suite(write_suite(tmp_path, grid={"env": ["Hopper-v5"], "actor": ["mlp"], "algo": ["td3"],
                                               "seed": [0], "lr": [1]}))  # fmt: skip
    suite = load_suite(write_suite(tmp_path, grid={"env": ["Hopper-v5"], "actor": ["spiky"], "algo": ["td3"],
                                                   "seed": [0]}))  # fmt: skip
    with pytest.raises(ConfigError, match="unknown value 'spiky'; valid: mlp, popsan, ilcsan"):
        suite.trials()
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        runner.parse_only(["colour=red"])


# ---- the runner on the smoke suite -------------------------------------------------------------------
def test_smoke_suite_runs_resumes_and_reports_failures(tmp_path: Path, capsys) -> None:
    suite_file = write_suite(tmp_path)
    trials = {t.name: t for t in load_suite(suite_file).trials()}
    # an interrupted trial: the same config trained to 200 of its 400 steps
    interrupted = trials["InvertedPendulum-v5_mlp_td3_s1"]
    config = interrupted.run_config()
    config.train.timesteps = 200
    from experiments.training import train

    train(config, RunDirectory(interrupted.run_dir))
    # a trial whose run directory holds another run: fails, the others go on
    clash = trials["InvertedPendulum-v5_ilcsan_td3_s1"]
    config = clash.run_config()
    config.actor.timesteps = 5
    RunDirectory(clash.run_dir).initialise(config)

    assert runner.main([str(suite_file)]) == 1
    captured = capsys.readouterr()
    assert "InvertedPendulum-v5_mlp_td3_s0: trained" in captured.out
    assert "InvertedPendulum-v5_mlp_td3_s1: resumed" in captured.out
    assert "InvertedPendulum-v5_ilcsan_td3_s1: FAILED" in captured.out and "actor.timesteps (5 != 3)" in captured.out
    assert "1 trial(s) failed: InvertedPendulum-v5_ilcsan_td3_s1" in captured.err
    rows = list(csv.DictReader((tmp_path / "runs" / interrupted.name / "evaluations.csv").open()))
    assert [int(r["timesteps"]) for r in rows] == [200, 400]  # continued, not restarted

    RunDirectory(clash.run_dir).config_file.unlink()  # fix the clash; rerun only the ILC-SAN trials
    assert runner.main([str(suite_file), "--only", "actor=ilcsan"]) == 0
    out = capsys.readouterr().out
    assert "InvertedPendulum-v5_ilcsan_td3_s0: finished" in out and "InvertedPendulum-v5_ilcsan_td3_s1: trained" in out

    assert runner.main([str(suite_file), "--aggregate-only"]) == 0
    table = list(csv.DictReader((tmp_path / "results" / "results.csv").open()))
    assert [(r["actor"], r["seeds"]) for r in table] == [("ilcsan", "0 1"), ("mlp", "0 1")]
    assert all(float(r["max_mean"]) >= float(r["best_mean"]) >= float(r["final_mean"]) - 1e-9 for r in table)
    assert float(table[1]["final_ratio_vs_mlp"]) == 1.0
    rates = json.loads(table[0]["firing_rates"])
    assert set(rates) == {"encoder", "hidden1", "hidden2", "output"} and all(0 < r < 1 for r in rates.values())
    assert float(table[0]["energy_ratio_vs_mlp"]) < 1.0  # spikes are cheaper than the MLP's MACs here
    assert (tmp_path / "results" / "InvertedPendulum-v5.png").stat().st_size > 5_000
    summary = json.loads((tmp_path / "runs" / "InvertedPendulum-v5_ilcsan_td3_s0" / "summary.json").read_text())
    assert summary["timesteps"] == 400 and len(summary["rerun_returns"]) == 1
    # a trial records the command that runs it alone, not the Ray worker's command line
    metadata = json.loads((tmp_path / "runs" / "InvertedPendulum-v5_ilcsan_td3_s1" / "metadata.json").read_text())
    only = "--only env=InvertedPendulum-v5 --only actor=ilcsan --only algo=td3 --only seed=1 --only framework=sb3"
    assert metadata["command"] == f"python -m experiments.run {suite_file} {only}"

    # an unfinished run (no DONE: still training or stopped) is left out of the statistics, by name
    import shutil

    from experiments import aggregate

    runs = sorted((tmp_path / "runs").glob("InvertedPendulum-v5_*"))
    stopped = tmp_path / "runs" / "stopped_s2"
    shutil.copytree(runs[0], stopped)
    RunDirectory(stopped).done_file.unlink()
    assert aggregate.main([*map(str, runs), str(stopped), "--out", str(tmp_path / "again")]) == 0
    assert f"left out 1 unfinished run(s): {stopped} (400 of 400 steps)" in capsys.readouterr().err
    again = list(csv.DictReader((tmp_path / "again" / "results.csv").open()))
    assert [(r["actor"], r["seeds"]) for r in again] == [("ilcsan", "0 1"), ("mlp", "0 1")]
    assert aggregate.main([str(stopped), "--out", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.count("\n") == 2  # the left-out line and one error line
