"""Traffic-signal control: scenarios, SUMO conversion and simulation (real libsumo), baselines, MTLight targets,
learning, CLI. Inputs, CityFlow and the pressure baselines: ``test_traffic_inputs.py``."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from agents.traffic import FixedTimeController, MaxPressureController, TrafficAgentConfig, make_controller
from agents.traffic.auxiliary import auxiliary_targets
from envs.traffic import (
    DatasetMissingError,
    GridSpec,
    Scenario,
    ScenarioError,
    TrafficEnvSettings,
    TrafficSignalEnv,
    UnknownScenarioError,
    grid_scenario,
    load_scenario,
)
from envs.traffic.datasets import DATASETS, dataset_files, sha256_of
from envs.traffic.env import CrossingTracker
from envs.traffic.sumo_backend import SumoEngine
from envs.traffic.sumo_net import SumoError, build_sumo_scenario, sumo_home
from experiments.traffic_training import run_episode
from train_agent import main

SHARED_DATA = Path(os.environ.get("SPIKERL_TRAFFIC_DATA", Path(__file__).resolve().parents[2] / "shared/data/traffic"))
CONGESTED = {"demand_we": 700.0, "demand_ns": 250.0}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("traffic_cache"))


def make_env(cache: str, cols=1, rows=1, horizon=600, backend="sumo", **grid) -> TrafficSignalEnv:
    scenario = grid_scenario(GridSpec(cols=cols, rows=rows, horizon=horizon, **grid))
    return TrafficSignalEnv(scenario, TrafficEnvSettings(backend=backend, horizon=horizon, cache_dir=cache))


# ---- scenarios and data -------------------------------------------------------------------------------------------
def test_grid_follows_the_benchmark_template():
    scenario = grid_scenario(GridSpec(cols=3, rows=2, horizon=60))
    assert [i.id for i in scenario.intersections] == [f"intersection_{i}_{j}" for i in (1, 2, 3) for j in (1, 2)]
    inter = scenario.intersections[0]  # intersection_1_1: approaches W, S, E, N in roadLink order
    assert inter.incoming_roads == ["road_0_1_0", "road_1_0_1", "road_2_1_2", "road_1_2_3"]
    assert len(inter.incoming_lanes) == 12 and len(inter.phases) == 9
    assert inter.links[0][:3] == ("go_straight", "road_0_1_0", "road_1_1_0")
    assert inter.links[1][:3] == ("turn_left", "road_0_1_0", "road_1_1_1")
    assert sorted(inter.phases[1]) == [0, 2, 3, 6, 7, 10]  # WT-ET + right turns, as in Jinan


def test_malformed_roadnet_and_flow_name_file_and_field(tmp_path):
    scenario = grid_scenario(GridSpec(horizon=60))
    roadnet, flow = scenario.write(tmp_path)
    data = json.loads(roadnet.read_text())
    real = next(i for i, inter in enumerate(data["intersections"]) if not inter["virtual"])
    del data["intersections"][real]["roadLinks"][2]["startRoad"]
    roadnet.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match=rf"{roadnet}: intersections\[{real}\]\.roadLinks\[2\]: .*'startRoad'"):
        Scenario.from_files("bad", roadnet, flow)
    scenario.write(tmp_path)
    flows = json.loads(flow.read_text())
    flows[3]["route"] = ["road_9_9_9"]
    flow.write_text(json.dumps(flows))
    with pytest.raises(ScenarioError, match=rf"{flow}: \[3\]\.route: unknown road 'road_9_9_9'"):
        Scenario.from_files("bad", roadnet, flow)


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(UnknownScenarioError, match="valid: gridCxR.*jinan_3x4.*hangzhou_4x4.*newyork_16x3"):
        load_scenario("paris_5x5")
    with pytest.raises(ValueError, match="unknown backend 'vissim'; valid: sumo, cityflow"):
        TrafficEnvSettings(backend="vissim")
    with pytest.raises(DatasetMissingError, match=f"dataset 'hangzhou_4x4' is not in data directory {tmp_path}"):
        load_scenario("hangzhou_4x4", tmp_path)


def test_registry_hashes_match_the_shared_benchmark_files():
    roadnet, flow = dataset_files("jinan_3x4", SHARED_DATA)
    assert sha256_of(roadnet) == DATASETS["jinan_3x4"].roadnet.sha256
    assert sha256_of(flow) == DATASETS["jinan_3x4"].flow.sha256
    scenario = load_scenario("jinan_3x4", SHARED_DATA)
    assert len(scenario.intersections) == 12 and len(scenario.vehicles) == 6295


# ---- SUMO conversion -------------------------------------------------------------------------------------------------
def test_sumo_conversion_matches_the_cityflow_scenario(cache):
    scenario = grid_scenario(GridSpec(cols=2, rows=2, horizon=300, **CONGESTED))
    inter = scenario.intersections[0]
    engine = SumoEngine(scenario, inter.incoming_lanes, cache_dir=cache)
    try:
        import libsumo

        assert sorted(libsumo.trafficlight.getIDList()) == sorted(i.id for i in scenario.intersections)
        for road in scenario.roads.values():
            assert libsumo.edge.getLaneNumber(road["id"]) == len(road["lanes"])
        # every controlled SUMO link is exactly one CityFlow lane link (lane order reversed)
        expected = set()
        for link in scenario.roadnet["intersections"]:
            if link["id"] != inter.id:
                continue
            for road_link in link["roadLinks"]:
                for lane_link in road_link["laneLinks"]:
                    expected.add(
                        (f"{road_link['startRoad']}_{2 - lane_link['startLaneIndex']}",
                         f"{road_link['endRoad']}_{2 - lane_link['endLaneIndex']}")
                    )  # fmt: skip
        links = libsumo.trafficlight.getControlledLinks(inter.id)
        assert {(group[0][0], group[0][1]) for group in links} == expected and len(links) == 36
        # phases: WT-ET (phase 1) is green exactly on the W/E through links and the right turns
        engine.set_phase(inter.id, 1)
        state = libsumo.trafficlight.getRedYellowGreenState(inter.id)
        green_links = {engine.files.programs[inter.id].link_road_links[k] for k, c in enumerate(state) if c in "Gg"}
        assert green_links == set(inter.phases[1])
        engine.set_phase(inter.id, 0)  # yellow after phase 1: the W/E through links turn yellow
        state = libsumo.trafficlight.getRedYellowGreenState(inter.id)
        assert {engine.files.programs[inter.id].link_road_links[k] for k, c in enumerate(state) if c == "y"} == {0, 7}
    finally:
        engine.close()
    # vehicles: same ids, departure seconds and routes
    routes = ET.parse(engine.files.routes).getroot()
    vehicles = [
        (v.get("id"), float(v.get("depart")), tuple(v.find("route").get("edges").split()))
        for v in routes.iter("vehicle")
    ]
    assert vehicles == [(v.id, v.depart, v.route) for v in scenario.vehicles]
    vtype = routes.find("vType")
    assert (vtype.get("sigma"), vtype.get("tau"), vtype.get("minGap")) == ("0", "2", "2.5")


def test_sumo_startup_errors_surface_sumo_message(tmp_path):
    scenario = grid_scenario(GridSpec(horizon=60))
    files = build_sumo_scenario(scenario, tmp_path)
    files.routes.write_text('<routes><vehicle id="a" depart="0"><route edges="no_such_edge"/></vehicle></routes>')
    with pytest.raises(SumoError, match="SUMO cannot load scenario grid1x1.*no_such_edge"):
        SumoEngine(scenario, [], cache_dir=tmp_path)


# ---- environment and metrics ------------------------------------------------------------------------------------
def test_sumo_episode_runs_end_to_end_with_the_parallel_api(cache):
    from pettingzoo.test import parallel_api_test

    env = make_env(cache, horizon=300)
    parallel_api_test(env, num_cycles=40)
    obs, _ = env.reset(seed=3)
    assert obs["intersection_1_1"].shape == (4 + 4 * 12,)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        _, rewards, _, truncations, infos = env.step({a: int(rng.integers(4)) for a in env.agents})
        steps += 1
    assert steps == 30 and all(truncations.values())
    metrics = env.metrics()
    free_flow = 2 * 300 / 11.111  # two 300 m roads at the speed limit
    assert metrics["throughput"] > 10 and metrics["average_travel_time"] > free_flow * 0.9
    assert metrics["sim_time"] == 300
    assert rewards["intersection_1_1"] == -infos["intersection_1_1"]["queue"].sum()
    env.close()


def test_maxpressure_beats_fixedtime_on_a_congested_grid(cache):
    env = make_env(cache, cols=2, rows=2, horizon=1200, **CONGESTED)
    fixed = run_episode(env, FixedTimeController(env, green_time=30), seed=0, learn=False)
    pressure = run_episode(env, MaxPressureController(env), seed=0, learn=False)
    env.close()
    assert pressure["average_travel_time"] < 0.8 * fixed["average_travel_time"]
    assert pressure["throughput"] > fixed["throughput"]


# ---- MTLight auxiliary targets -------------------------------------------------------------------------------
def test_auxiliary_targets_match_hand_computed_values():
    scenario = grid_scenario(GridSpec(horizon=60))
    tracker = CrossingTracker(scenario)
    exits = scenario.intersections[0].exit_roads  # E, N, S, W: road_1_1_0, road_1_1_1, road_1_1_3, road_1_1_2
    assert exits == ["road_1_1_0", "road_1_1_1", "road_1_1_3", "road_1_1_2"]
    tracker.update({"a": "road_0_1_0"}, 10.0, 10.0)
    tracker.update({"a": "road_0_1_0", "b": "road_1_0_1"}, 20.0, 10.0)
    # a: on the west approach since t=10, crosses straight east -> 20 - 10 + 10 = 20 s; b: from south, turns left
    # (west) -> 20 - 20 + 10 = 10 s; c enters the west approach and does not cross
    flow, travel = tracker.update({"a": "road_1_1_0", "b": "road_1_1_2", "c": "road_0_1_0"}, 30.0, 10.0)
    np.testing.assert_array_equal(flow, [[1, 0, 0, 1]])
    np.testing.assert_allclose(travel, [15.0])
    queue = np.zeros((1, 12), np.float32)
    queue[0, 1] = 4
    targets = auxiliary_targets(flow, travel, queue, np.array([-4.0]), reward_scale=0.05)
    np.testing.assert_allclose(targets["flow"], [[0.5, 0, 0, 0.5]])
    np.testing.assert_allclose(targets["travel"], [[0.15]])
    assert targets["queue"][0, 1] == pytest.approx(0.4) and targets["queue"].sum() == pytest.approx(0.4)
    np.testing.assert_allclose(targets["reward"], [[-0.2]])


def test_crossing_indicators_from_a_real_sumo_run(cache):
    roadnet = grid_scenario(GridSpec(horizon=60)).roadnet
    vehicle = {"length": 5.0, "width": 2.0, "maxPosAcc": 2.0, "maxNegAcc": 4.5, "usualPosAcc": 2.0,
               "usualNegAcc": 4.5, "minGap": 2.5, "maxSpeed": 11.111, "headwayTime": 2}  # fmt: skip
    flows = [{"vehicle": vehicle, "route": ["road_0_1_0", "road_1_1_0"], "interval": 1.0, "startTime": 0, "endTime": 0}]
    env = TrafficSignalEnv(Scenario("one_car", roadnet, flows), TrafficEnvSettings(horizon=100, cache_dir=cache))
    env.reset()
    crossings = []
    while env.agents:
        _, _, _, _, infos = env.step({"intersection_1_1": 0})  # WT-ET green all the time
        info = infos["intersection_1_1"]
        if info["exit_flow"].sum():
            crossings.append((env.engine.time, info["exit_flow"].tolist(), info["leaving_travel_time"]))
    # 300 m at <= 11.1 m/s: crosses between 20 and 50 s, once, into the east exit; approach time in whole intervals
    assert len(crossings) == 1
    time, flow, travel = crossings[0]
    assert 20 <= time <= 50 and flow == [1, 0, 0, 0] and travel == time - 10 and travel % 10 == 0
    assert env.metrics()["throughput"] == 1
    env.close()


# ---- learning ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["dqn", "mtlight"])
def test_training_improves_over_random(cache, name):
    env = make_env(cache, cols=2, rows=2, horizon=900, **CONGESTED)
    config = TrafficAgentConfig(
        name=name, epsilon_decay_episodes=3, learning_starts=200, target_update=50, updates_per_step=2
    )
    agent = make_controller(config, env, seed=0)
    random_att = run_episode(env, agent, seed=0, learn=True)["average_travel_time"]  # epsilon = 1: random
    for episode in range(1, 4):
        run_episode(env, agent, seed=episode, learn=True)
        agent.end_episode()
    greedy_att = run_episode(env, agent, seed=9, learn=False)["average_travel_time"]
    env.close()
    assert greedy_att < 0.8 * random_att, (name, random_att, greedy_att)


def test_spiking_q_network_gives_q_values_and_gradients():
    import torch

    from agents.traffic.networks import SpikingQNetwork

    torch.manual_seed(0)
    net = SpikingQNetwork(10, [16, 16], actions=4, steps=5)
    x = torch.rand(6, 10) * 3
    q = net(x)
    assert q.shape == (6, 4) and torch.isfinite(q).all()
    assert torch.equal(net(x), q)  # deterministic: no state carried over from one call to the next
    alone = torch.cat([net(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(q, alone, rtol=1e-5, atol=1e-6)  # row i of a batch = the network on row i alone
    distance = torch.cdist(q, q) + torch.eye(len(x))
    assert distance.min() > 1e-3, distance  # different observations give different Q-values
    (q * torch.randn_like(q)).sum().backward()
    for name, parameter in net.named_parameters():
        grad = parameter.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


# ---- command line ---------------------------------------------------------------------------------------------------
def test_cli_train_resume_and_eval(tmp_path, capsys, cache):
    run = tmp_path / "run"
    common = ["--set", "env.horizon=300", "--set", f"env.cache_dir={cache}", "--no-progress"]
    argv = ["traffic", "--agent", "mtlight", "--scenario", "grid1x1", "--backend", "sumo", "--episodes", "1"]
    assert main([*argv, "--run-dir", str(run), *common]) == 0
    assert main(["traffic", "--resume", str(run), "--episodes", "2", "--no-progress"]) == 0
    rows = (run / "episodes.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[2].startswith("2,")
    assert (run / "checkpoints" / "step_000000002" / "replay_buffer.pkl").is_file() and (run / "model.zip").is_file()
    capsys.readouterr()
    assert main(["traffic-eval", str(run), "--compare", "maxpressure"]) == 0
    out = capsys.readouterr().out
    assert "| mtlight |" in out and "| maxpressure |" in out and "average travel time" in out
    assert main(["traffic", "--scenario", "paris", "--run-dir", str(tmp_path / "x")]) == 2
    assert "unknown scenario 'paris'; valid: gridCxR" in capsys.readouterr().err
    (run / "model.zip").write_bytes(b"garbage")
    assert main(["traffic-eval", str(run)]) == 2
    assert "not a readable traffic agent checkpoint" in capsys.readouterr().err


def test_sumo_home_is_set_from_the_installed_package():
    import sumo

    assert sumo_home() == Path(sumo.SUMO_HOME) or os.environ["SUMO_HOME"] == str(sumo_home())
