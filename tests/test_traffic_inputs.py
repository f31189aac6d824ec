"""Traffic inputs and backends: validation of every field CityFlow reads, malformed files on both backends (one-line
errors, no run directory), user scenarios from the command line, dataset sha256 checks, CityFlow engine handling
(no sharing, no temporary files, its own counts), the pressure baselines, safe checkpoint loading.

CityFlow tests skip where ``import cityflow`` fails, except under ``CI=true``, where they fail with the fix."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.traffic import (
    AdvancedMaxPressureController,
    FixedTimeController,
    MaxPressureController,
    SharedDQNAgent,
    TrafficAgentConfig,
)
from envs.traffic import (
    DatasetChecksumError,
    GridSpec,
    NoVehiclesError,
    Scenario,
    ScenarioError,
    TrafficEnvSettings,
    TrafficSignalEnv,
    grid_scenario,
    load_scenario,
)
from envs.traffic.cityflow_backend import CityFlowEngine, cityflow_available
from experiments.traffic_training import TrafficRunDirectory, run_episode
from train_agent import main

SHARED_DATA = Path(os.environ.get("SPIKERL_TRAFFIC_DATA", Path(__file__).resolve().parents[2] / "shared/data/traffic"))
BACKENDS = ("sumo", "cityflow")


def require_backend(backend: str) -> None:
    """Skip a CityFlow test where CityFlow is missing, unless CI=true: there the test must run, so it fails."""
    if backend != "cityflow" or cityflow_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            "CI=true but `import cityflow` fails: `make install` installs ../shared/wheels/cityflow-*.whl when "
            "present; otherwise build it with `make cityflow CITYFLOW_SRC=path/to/CityFlow`"
        )
    pytest.skip("cityflow is not importable (make cityflow CITYFLOW_SRC=path/to/CityFlow)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("traffic_cache"))


def grid_files(directory: Path, horizon: int = 120) -> tuple[Path, Path, dict, list]:
    scenario = grid_scenario(GridSpec(horizon=horizon))
    roadnet, flow = scenario.write(directory)
    return roadnet, flow, copy.deepcopy(scenario.roadnet), copy.deepcopy(scenario.flows)


def real_index(roadnet: dict) -> int:
    return next(i for i, inter in enumerate(roadnet["intersections"]) if not inter["virtual"])


# every field CityFlow's loader reads without a default: (what to delete, the path the error must name)
ROADNET_FIELDS = {
    "lane width": (
        lambda r, i: r["roads"][0]["lanes"][1].pop("width"),
        r"roads\[0\]\.lanes\[1\]: missing field 'width'",
    ),
    "lane maxSpeed": (lambda r, i: r["roads"][2]["lanes"][0].pop("maxSpeed"), r"roads\[2\]\.lanes\[0\]: .*'maxSpeed'"),
    "road points": (lambda r, i: r["roads"][1].pop("points"), r"roads\[1\]: missing field 'points'"),
    "road endIntersection": (lambda r, i: r["roads"][3].pop("endIntersection"), r"roads\[3\]: .*'endIntersection'"),
    "intersection width": (lambda r, i: r["intersections"][i].pop("width"), r"intersections\[\d+\]: .*'width'"),
    "intersection roads": (lambda r, i: r["intersections"][i].pop("roads"), r"intersections\[\d+\]: .*'roads'"),
    "intersection point": (lambda r, i: r["intersections"][0].pop("point"), r"intersections\[0\]: .*'point'"),
    "intersection virtual": (lambda r, i: r["intersections"][i].pop("virtual"), r"intersections\[\d+\]: .*'virtual'"),
    "trafficLight": (lambda r, i: r["intersections"][i].pop("trafficLight"), r"intersections\[\d+\]: .*'trafficLight'"),
    "light phase time": (
        lambda r, i: r["intersections"][i]["trafficLight"]["lightphases"][2].pop("time"),
        r"trafficLight\.lightphases\[2\]: missing field 'time'",
    ),
    "laneLink endLaneIndex": (
        lambda r, i: r["intersections"][i]["roadLinks"][4]["laneLinks"][1].pop("endLaneIndex"),
        r"roadLinks\[4\]\.laneLinks\[1\]: missing field 'endLaneIndex'",
    ),
}


@pytest.mark.parametrize("case", sorted(ROADNET_FIELDS))
def test_every_roadnet_field_cityflow_reads_is_validated(tmp_path, case):
    roadnet_path, flow_path, roadnet, _ = grid_files(tmp_path)
    delete, message = ROADNET_FIELDS[case]
    delete(roadnet, real_index(roadnet))
    roadnet_path.write_text(json.dumps(roadnet))
    with pytest.raises(ScenarioError, match=rf"^{roadnet_path}: .*{message}"):
        Scenario.from_files("bad", roadnet_path, flow_path)


def test_flow_fields_are_validated(tmp_path):
    roadnet_path, flow_path, _, flows = grid_files(tmp_path)
    broken = copy.deepcopy(flows)
    del broken[2]["vehicle"]["headwayTime"]
    flow_path.write_text(json.dumps(broken))
    with pytest.raises(ScenarioError, match=rf"^{flow_path}: \[2\]\.vehicle: missing field 'headwayTime'"):
        Scenario.from_files("bad", roadnet_path, flow_path)
    broken = copy.deepcopy(flows)
    broken[0]["startTime"] = 3.5  # CityFlow would read this as 0 and the endTime as "never"
    flow_path.write_text(json.dumps(broken))
    with pytest.raises(ScenarioError, match=r"\[0\]\.startTime: expected int, got 3\.5"):
        Scenario.from_files("bad", roadnet_path, flow_path)
    # a route through a movement without lane links cannot be driven (CityFlow's router would drop the vehicle)
    roadnet = json.loads(roadnet_path.read_text())
    real = roadnet["intersections"][real_index(roadnet)]
    real["roadLinks"][0]["laneLinks"] = []  # W straight
    roadnet_path.write_text(json.dumps(roadnet))
    flow_path.write_text(json.dumps([dict(flows[0], route=["road_0_1_0", "road_1_1_0"])]))
    with pytest.raises(ScenarioError, match=r"route: no path from 'road_0_1_0' to 'road_1_1_0'"):
        Scenario.from_files("bad", roadnet_path, flow_path)


MALFORMED = {
    "lane width": ("roadnet", lambda r, f, i: r["roads"][0]["lanes"][0].pop("width"), "'width'"),
    "intersection width": ("roadnet", lambda r, f, i: r["intersections"][i].pop("width"), "'width'"),
    "intersection roads": ("roadnet", lambda r, f, i: r["intersections"][i].pop("roads"), "'roads'"),
    "light phase time": (
        "roadnet",
        lambda r, f, i: r["intersections"][i]["trafficLight"]["lightphases"][1].pop("time"),
        "'time'",
    ),
    "headwayTime": ("flow", lambda r, f, i: f[0]["vehicle"].pop("headwayTime"), "'headwayTime'"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_give_one_line_errors_and_no_run_directory(tmp_path, capsys, cache, backend, case):
    require_backend(backend)
    roadnet_path, flow_path, roadnet, flows = grid_files(tmp_path)
    which, delete, field = MALFORMED[case]
    delete(roadnet, flows, real_index(roadnet))
    roadnet_path.write_text(json.dumps(roadnet))
    flow_path.write_text(json.dumps(flows))
    run = tmp_path / "run"
    argv = ["traffic", "--agent", "fixedtime", "--roadnet", str(roadnet_path), "--flow", str(flow_path)]
    argv += ["--backend", backend, "--run-dir", str(run), "--set", f"env.cache_dir={cache}", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    bad_file = roadnet_path if which == "roadnet" else flow_path
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {bad_file}: ") and field in err, err
    assert not run.exists()


def test_cityflow_load_failures_are_errors_not_crashes():
    require_backend("cityflow")
    scenario = grid_scenario(GridSpec(cols=2, horizon=60))
    del scenario.roadnet["roads"][0]["lanes"][0]["width"]  # bypasses validation: CityFlow itself must be guarded
    with pytest.raises(ScenarioError, match="CityFlow cannot load scenario grid2x1: .*width"):
        CityFlowEngine(scenario, [])


def test_vehicles_dropped_by_the_simulator_are_an_error_not_a_result(tmp_path, capsys, cache):
    require_backend("cityflow")
    scenario = grid_scenario(GridSpec(horizon=120))
    for inter in scenario.roadnet["intersections"]:
        for link in inter["roadLinks"]:
            link["laneLinks"] = []  # after validation: CityFlow cannot route any vehicle and omits them all
    env = TrafficSignalEnv(scenario, TrafficEnvSettings(backend="cityflow", horizon=120), indicators=False)
    with pytest.raises(NoVehiclesError, match=r"grid1x1: no vehicle entered the network by t=\d+ s although"):
        run_episode(env, FixedTimeController(env), seed=0, learn=False)
    env.close()


# ---- user scenarios, datasets, run records ---------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_user_scenario_files_run_on_both_backends(tmp_path, cache, backend):
    require_backend(backend)
    roadnet_path, flow_path, _, _ = grid_files(tmp_path, horizon=300)
    run = tmp_path / "run"
    argv = ["traffic", "--agent", "maxpressure", "--roadnet", str(roadnet_path), "--flow", str(flow_path)]
    argv += ["--backend", backend, "--run-dir", str(run), "--episodes", "1", "--no-progress"]
    assert main([*argv, "--set", "env.horizon=300", "--set", f"env.cache_dir={cache}"]) == 0
    rows = (run / "episodes.csv").read_text().splitlines()
    assert len(rows) == 2
    values = dict(zip(rows[0].split(","), rows[1].split(",")))
    assert float(values["throughput"]) > 20 and float(values["average_travel_time"]) > 2 * 300 / 11.111 * 0.9
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["scenario"]["name"] == "roadnet"
    assert meta["scenario"]["files"] == {
        str(roadnet_path.resolve()): _sha256(roadnet_path),
        str(flow_path.resolve()): _sha256(flow_path),
    }


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataset_files_are_checked_against_their_sha256(tmp_path):
    target = tmp_path / "jinan_3x4" / "cityflow"
    shutil.copytree(SHARED_DATA / "jinan_3x4" / "cityflow", target)
    flow = target / "anon_3_4_jinan_real.json"
    flow.write_text(json.dumps(json.loads(flow.read_text()), indent=1))  # same content, other bytes
    with pytest.raises(DatasetChecksumError, match=rf"^{flow}: sha256 [0-9a-f]{{64}} differs .*verify_sha256: false"):
        load_scenario("jinan_3x4", tmp_path)
    scenario = load_scenario("jinan_3x4", tmp_path, verify=False)
    assert scenario.sources[str(flow)] == _sha256(flow) and len(scenario.vehicles) == 6295


def test_episode_rows_are_recorded_once_per_episode(tmp_path):
    run = TrafficRunDirectory(tmp_path)
    run.append_episode({"episode": 1, "average_travel_time": 10.0})
    run.append_episode({"episode": 1, "average_travel_time": 10.0})
    run.append_episode({"episode": 2, "average_travel_time": 9.0, "td_loss": 0.5})
    assert (tmp_path / "episodes.csv").read_text().splitlines() == [
        "episode,average_travel_time,td_loss",
        "1,10.0,",
        "2,9.0,0.5",
    ]


# ---- CityFlow engine handling ---------------------------------------------------------------------------------
def test_cityflow_engines_are_not_shared_and_leave_no_files():
    require_backend("cityflow")
    before = set(Path(tempfile.gettempdir()).glob("spikerl-cityflow-*"))
    scenario = grid_scenario(GridSpec(cols=2, rows=2, horizon=300, demand_we=700))
    settings = TrafficEnvSettings(backend="cityflow", horizon=300)
    first, second = TrafficSignalEnv(scenario, settings), TrafficSignalEnv(scenario, settings)
    assert first.engine.engine is not second.engine.engine
    alone = run_episode(first, MaxPressureController(first), seed=0, learn=False)
    second.reset(seed=0)
    for _ in range(10):  # interleave the other environment: the first one's episode must not change
        second.step({agent: 1 for agent in second.possible_agents})
    again = run_episode(first, MaxPressureController(first), seed=0, learn=False)
    assert {k: v for k, v in again.items() if k != "wall_s"} == {k: v for k, v in alone.items() if k != "wall_s"}
    engine = first.engine.engine
    first.close()
    third = TrafficSignalEnv(scenario, settings)  # an engine given back is reused
    assert third.engine.engine is engine
    second.close()
    third.close()
    assert set(Path(tempfile.gettempdir()).glob("spikerl-cityflow-*")) == before


def test_a_replaced_sumo_simulation_is_not_stepped_silently(cache):
    scenario = grid_scenario(GridSpec(horizon=60))
    settings = TrafficEnvSettings(horizon=60, cache_dir=cache)
    first = TrafficSignalEnv(scenario, settings)
    first.reset()
    second = TrafficSignalEnv(scenario, settings)  # takes over libsumo's only simulation
    with pytest.raises(RuntimeError, match="libsumo runs one simulation per process"):
        first.step({agent: 0 for agent in first.possible_agents})
    first.reset()  # takes the simulation back
    first.step({agent: 0 for agent in first.possible_agents})
    first.close()
    second.close()


def test_cityflow_lane_reads_match_cityflow_own_counts():
    require_backend("cityflow")
    scenario = grid_scenario(GridSpec(cols=2, rows=2, horizon=600, demand_we=700, demand_ns=250))
    env = TrafficSignalEnv(scenario, TrafficEnvSettings(backend="cityflow", horizon=600), indicators=False)
    engine = env.engine
    env.reset(seed=0)
    arrivals, present = 0, set()
    while env.agents:
        env.step({agent: int(env.engine.time // 30) % 4 for agent in env.possible_agents})
        counts = engine.engine.get_lane_vehicle_count()
        halting = engine.engine.get_lane_waiting_vehicle_count()
        np.testing.assert_array_equal(env.lane_table[:-1, 0], [counts[lane] for lane in engine.lanes])
        np.testing.assert_array_equal(env.lane_table[:-1, 1], [halting[lane] for lane in engine.lanes])
        now = set(engine.engine.get_vehicles(include_waiting=True))
        arrivals, present = arrivals + len(present - now), now
    assert env.metrics()["throughput"] == arrivals > 100
    assert env.metrics()["average_travel_time"] == engine.engine.get_average_travel_time()
    env.close()


# ---- pressure baselines -----------------------------------------------------------------------------------------
def test_phase_pressures_match_hand_computed_values(cache):
    scenario = grid_scenario(GridSpec(horizon=60))
    env = TrafficSignalEnv(scenario, TrafficEnvSettings(horizon=60, cache_dir=cache), indicators=False)
    env.reset()
    inter = scenario.intersections[0]
    row = {lane: k for k, lane in enumerate(env.engine.lanes)}
    env.lane_table[:] = 0.0
    env.lane_table[row["road_0_1_0_1"]] = [6, 4, 0, 0]  # west approach, through lane: 6 vehicles, 4 halting
    env.lane_table[row["road_2_1_2_1"]] = [2, 1, 0, 0]  # east approach, through lane
    env.lane_table[row["road_1_1_0_0"], 0] = 3  # east exit road, lane 0: out-lanes of the W-through movement
    # phase 1 = W+E through: (6 - 3/3) + (2 - 0) = 7 vehicles; efficient pressure (4 - 0) + (1 - 0) = 5;
    # phase 4 = S+N left, and N-left also exits into road_1_1_0: 0 - 3/3 = -1 (no halting vehicles there: 0)
    assert inter.links[0][:3] == ("go_straight", "road_0_1_0", "road_1_1_0")
    assert inter.links[9][:3] == ("turn_left", "road_1_2_3", "road_1_1_0")
    np.testing.assert_allclose(env.phase_pressures(0)[0], [7, 0, 0, -1])
    np.testing.assert_allclose(env.phase_pressures(1)[0], [5, 0, 0, 0])
    env.close()


def test_min_green_holds_each_phase_and_advanced_mp_beats_the_classics(cache):
    spec = GridSpec(cols=2, rows=2, horizon=600, demand_we=700, demand_ns=250)
    env = TrafficSignalEnv(grid_scenario(spec), TrafficEnvSettings(horizon=600, cache_dir=cache), indicators=False)
    controller = MaxPressureController(env, min_green=30)
    env.reset(seed=0)
    actions = []
    while env.agents:
        action = controller.act(env)
        actions.append(action)
        env.step({agent: int(action[a]) for a, agent in enumerate(env.possible_agents)})
    runs = np.diff(np.flatnonzero(np.diff(np.array(actions)[:, 0]) != 0))
    assert runs.size > 3 and runs.min() >= 3  # >= 3 decisions of 10 s between changes
    att = {
        name: run_episode(env, make(env), seed=0, learn=False)["average_travel_time"]
        for name, make in {
            "fixedtime": FixedTimeController,
            "maxpressure": MaxPressureController,
            "advanced_mp": AdvancedMaxPressureController,
        }.items()
    }
    env.close()
    assert att["advanced_mp"] < att["maxpressure"] < 0.8 * att["fixedtime"], att


# ---- checkpoints --------------------------------------------------------------------------------------------------
class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["SPIKERL_PWNED"]),))


def test_checkpoint_loading_never_executes_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("SPIKERL_PWNED", str(marker))
    agent = SharedDQNAgent(TrafficAgentConfig(name="dqn"), obs_dim=8, n_actions=4, n_exits=4, max_lanes=1)
    good = tmp_path / "good.zip"
    agent.save(good)
    agent.load(good)  # a real checkpoint loads under the restricted unpickler (rng state included)
    evil = tmp_path / "evil.zip"
    torch.save({"model": _Payload()}, evil)
    with pytest.raises(ValueError, match="not a readable traffic agent checkpoint") as refused:
        agent.load(evil)
    assert not marker.exists()
    message = str(refused.value)  # the CLI's one line: torch's several-paragraph refusal cut to its reason
    assert "\n" not in message and "holds objects other than tensors" in message and "Unsupported global" in message


def test_multi_seed_comparison_summarises_runs_and_the_best_baseline_settings(tmp_path, capsys):
    """experiments.traffic_seeds on a generated grid (CityFlow, 1 short episode per run): every agent and seed is
    trained and evaluated, the summary gives mean ± std and each run's value, and a sweep's best settings join."""
    require_backend("cityflow")
    from experiments import traffic_seeds

    row = {"controller": "maxpressure", "interval": 10, "min_green": 0}
    sweep = [
        {**row, "scenario": "grid2x2", "average_travel_time": 90.0},
        {**row, "scenario": "grid2x2", "interval": 15, "min_green": 20, "average_travel_time": 80.0},
        {**row, "scenario": "other", "average_travel_time": 70.0},
    ]
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    out = tmp_path / "seeds"
    argv = ["--out", str(out), "--scenario", "grid2x2", "--seeds", "0", "1", "--set", "train.episodes=1",
            "--set", "env.horizon=120", "--baselines", str(tmp_path / "sweep.json")]  # fmt: skip
    assert traffic_seeds.main(argv) == 0
    rows = {line.split(" | ")[1]: line for line in (out / "summary.md").read_text().splitlines()[2:]}
    assert set(rows) == {"mtlight", "dqn", "mtlight_spiking", "fixedtime", "maxpressure", "advanced_mp",
                         "maxpressure, best of sweep (interval 15 s, min green 20 s)"}  # fmt: skip
    for agent in ("mtlight", "dqn", "mtlight_spiking"):
        evaluations = [json.loads((out / f"grid2x2_{agent}_s{s}" / "traffic_eval.json").read_text()) for s in (0, 1)]
        times = [next(v for k, v in e.items() if k not in traffic_seeds.BASELINES)[0]["average_travel_time"]
                 for e in evaluations]  # fmt: skip
        spread = f"{np.mean(times):.1f} ± {np.std(times, ddof=1):.1f}"  # sample std, as the RL aggregate
        assert f"| 2 | {spread} | {times[0]:.1f}, {times[1]:.1f} |" in rows[agent]
    assert rows["fixedtime"].split(" | ")[2] == "1"  # deterministic baselines: once per scenario
    assert "| 1 | 80.0 | 80.0 |" in rows["maxpressure, best of sweep (interval 15 s, min green 20 s)"]
    assert (out / "grid2x2_curves.png").stat().st_size > 5_000
    # one agent alone (a variant of MTLight, say): only its runs, and the baselines beside its first seed
    variant = tmp_path / "variant"
    assert traffic_seeds.main(["--out", str(variant), "--scenario", "grid2x2", "--seeds", "0", "--agents", "dqn",
                               "--set", "train.episodes=1", "--set", "env.horizon=120"]) == 0  # fmt: skip
    assert sorted(p.name for p in variant.iterdir() if p.is_dir()) == ["grid2x2_dqn_s0"]
    assert "fixedtime" in json.loads((variant / "grid2x2_dqn_s0" / "traffic_eval.json").read_text())
    with pytest.raises(SystemExit, match="unknown agent.s. ppo; valid: mtlight, dqn, mtlight_spiking"):
        traffic_seeds.main(["--out", str(variant), "--scenario", "grid2x2", "--agents", "ppo"])
    # the latent probe of a trained MTLight: its own episode reproduces the evaluation, the mean-latent one is scored
    from experiments import mtlight_latent

    mtlight = out / "grid2x2_mtlight_s0"
    assert mtlight_latent.main([str(mtlight), "--out", str(tmp_path / "latent.json")]) == 0
    probe = json.loads((tmp_path / "latent.json").read_text())[str(mtlight)]
    evaluation = json.loads((mtlight / "traffic_eval.json").read_text())["mtlight"][0]
    assert probe["travel_time"] == evaluation["average_travel_time"]
    assert 0.0 <= probe["agreement"] <= 1.0 and probe["travel_time_mean_latent"] > 0
    assert probe["decisions"] == 4 * 120 // 10  # 4 intersections x 12 decisions of 10 s
    assert mtlight_latent.main([str(out / "grid2x2_dqn_s0")]) == 2
    assert "agent 'dqn' has no multi-task latent" in capsys.readouterr().err
    (mtlight / "model.zip").write_bytes(b"not a checkpoint")  # a corrupt model: one line, nothing written
    assert mtlight_latent.main([str(mtlight), "--out", str(tmp_path / "corrupt.json")]) == 2
    assert "not a readable traffic agent checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "corrupt.json").exists()


def test_a_bad_baseline_sweep_is_one_line_before_any_training(tmp_path):
    from experiments import traffic_seeds

    broken, foreign = tmp_path / "broken.json", tmp_path / "foreign.json"
    broken.write_text("[{")
    foreign.write_text(json.dumps([{"scenario": "jinan_3x4", "travel": 300.0}]))
    out = tmp_path / "seeds"
    cases = [(tmp_path / "missing.json", "cannot read a sweep (FileNotFoundError"),
             (broken, "cannot read a sweep (JSONDecodeError"),
             (foreign, "not a traffic_baselines sweep (a list of rows with scenario, controller")]  # fmt: skip
    for path, message in cases:
        with pytest.raises(SystemExit, match=re.escape(f"--baselines {path}: {message}")):
            traffic_seeds.main(["--out", str(out), "--scenario", "grid2x2", "--baselines", str(path)])
    assert not any(out.iterdir())  # nothing trained
