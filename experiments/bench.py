"""Speed benchmark of the spiking actors, on one torch thread, as ratios against baselines timed in the same run.

Run with ``python -m experiments.bench`` (``make bench``); ``--quick`` for a smoke run, ``--skip-sb3`` for the
microbenchmarks alone, ``--json PATH`` to also write the results.

1. Actor microbenchmarks with HalfCheetah-v5 shapes (obs 17, act 6), ``T = 5``, hidden ``[256, 256]`` and 10
   neurons per population, for ``ilcsan``, ``popsan``, ``mlp`` and ``noisysan`` (noise on, regenerated from
   its replay keys in every call, as NoisyTD3 does when acting and in the actor update):

   * ``fwd+bwd@100``: zero the gradients, forward a batch of 100, ``loss = output.sum()``, backward;
   * ``fwd@1``: forward a batch of 1 under ``torch.no_grad()`` (acting in the environment).

   Both are also timed for the *dense floor*: the spiking actor's three layers as dense ``Linear`` GEMMs
   (170->256, 256->256, 256->60) on all ``T * B`` rows with no neuron dynamics, trainable weights and an input
   that requires grad (the actor back-propagates into its encoder). The actor itself replaces the forward and
   weight-gradient GEMMs of its wide layers by spike-driven row sums (:func:`neurons.synapses.spike_linear`), so
   it can run below this floor. Each time is the median over several repeats
   of many calls, after a warm-up.
   Also timed: ILC-SAN's no-grad forward at batches 4-64 through the compiled event-driven kernel and through the
   batched path, which shows where ``EVENT_DRIVEN_MAX_BATCH`` should sit.

2. Stable-Baselines3 TD3 training throughput on HalfCheetah-v5, ``ilcsan``, ``noisysan`` and ``mlp``, each
   built with its paper recipe (:data:`RECIPES`) except for a short ``learning_starts``: environment steps
   per second over a fixed window of steps after learning has started (50 gradient steps per 50 env steps).
   Then, for ``ilcsan`` and ``mlp``, where a step's time goes: the trained actor's target forward and actor
   update timed on its own replay batches, the rest of the step (critic, replay, environment) by difference,
   the actor's firing rates, and the actor time per step that the 0.75 ratio would allow.

3. Replay-buffer memory for 1M HalfCheetah-v5 and Hopper-v5 transitions (computed from real buffer instances):
   ``ilcsan``, ``noisysan`` (8-byte noise keys) and the published NoisySAN approach that stores the noise itself.

Targets: ilcsan fwd+bwd@100 <= 1.2x dense floor; ilcsan fwd@1 <= 2x mlp; SB3 steps/s ilcsan/mlp >= 0.75.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from torch import nn

from agents.actors import ActorConfig, NoisySAN, build_actor, spiking
from agents.sb3 import NoiseKeyReplayBuffer
from envs import make_vec_env
from experiments.config import RunConfig
from experiments.training import build_model
from neurons.noise import ColouredNoiseTable

ENV_ID = "HalfCheetah-v5"
OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah-v5
TIMESTEPS = 5
HIDDEN_SIZES = [256, 256]
POPULATION = 10
TRAIN_BATCH = 100
EVENT_BATCHES = (4, 16, 24, 32, 64)
ACTORS = ("ilcsan", "popsan", "mlp")
FLOOR = "dense floor"
WARMUP_CALLS = 10
FLOOR_TARGET = 1.2  # ilcsan fwd+bwd@100 <= this x dense floor
MLP_TARGET = 2.0  # ilcsan fwd@1 <= this x mlp
SB3_TARGET = 0.75  # SB3 steps/s ilcsan / mlp >= this
CONFIG_DIR = Path(__file__).resolve().parent
RECIPES = {"ilcsan": "td3_ilcsan.yaml", "noisysan": "noisysan_td3.yaml", "mlp": "td3_mlp.yaml"}
REPLAY_TRANSITIONS = 1_000_000
REPLAY_ENV_IDS = ("HalfCheetah-v5", "Hopper-v5")


@dataclass(frozen=True)
class Plan:
    """How long to measure: timing repeats, the least duration of one repeat, and the SB3 step windows."""

    repeats: int
    min_repeat_s: float
    fill_steps: int  # random steps before learning starts (SB3 ``learning_starts``)
    timed_steps: int  # environment steps timed after learning has started


FULL = Plan(repeats=7, min_repeat_s=0.2, fill_steps=1000, timed_steps=2000)
QUICK = Plan(repeats=3, min_repeat_s=0.05, fill_steps=1000, timed_steps=500)


@dataclass(frozen=True)
class Target:
    """A ratio and the bound it should meet."""

    label: str
    value: float
    bound: float
    at_least: bool  # True: value >= bound is met; False: value <= bound is met

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{self.label}: {self.value:.2f}x (target {sign} {self.bound}x) {'ok' if self.met else 'MISSED'}"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "bound": self.bound, "at_least": self.at_least, "met": self.met}


def seconds_per_call(fn: Callable[[], None], plan: Plan) -> float:
    """Median seconds per call of ``fn``: warm up, pick a call count that makes one repeat last at least
    ``plan.min_repeat_s`` (doubling, as ``timeit.Timer.autorange``), then time ``plan.repeats`` repeats."""
    for _ in range(WARMUP_CALLS):
        fn()
    number = 1
    while _time_calls(fn, number) < plan.min_repeat_s:
        number *= 2
    return statistics.median(_time_calls(fn, number) / number for _ in range(plan.repeats))


def _time_calls(fn: Callable[[], None], number: int) -> float:
    """Wall-clock seconds for ``number`` back-to-back calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def training_call(module: nn.Module, inputs: torch.Tensor) -> Callable[[], None]:
    """One training pass: zero the gradients (of ``inputs`` too), forward, ``output.sum()``, backward."""

    def call() -> None:
        module.zero_grad()
        inputs.grad = None
        module(inputs).sum().backward()

    return call


def inference_call(module: nn.Module, inputs: torch.Tensor) -> Callable[[], None]:
    """One forward pass under ``torch.no_grad()``."""

    def call() -> None:
        with torch.no_grad():
            module(inputs)

    return call


class NoisyActorCall(nn.Module):
    """NoisySAN with its noise regenerated from (episode, step) keys on every call, as in NoisyTD3."""

    def __init__(self, network: NoisySAN, table: ColouredNoiseTable) -> None:
        super().__init__()
        self.network = network
        self.table = table

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[0]
        noise = self.table.windows(np.arange(batch), np.full(batch, 10), self.network.noise_width)
        return self.network(obs, noise)


def dense_floor() -> nn.Sequential:
    """The spiking actor's three GEMMs (encoder -> hidden -> hidden -> output populations), nothing else."""
    sizes = [OBS_DIM * POPULATION, *HIDDEN_SIZES, ACT_DIM * POPULATION]
    return nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(sizes)))


def floor_inputs(batch: int, requires_grad: bool) -> torch.Tensor:
    """Encoder-like 0/1 spikes on all ``T * batch`` rows."""
    spikes = (torch.rand(TIMESTEPS * batch, OBS_DIM * POPULATION) < 0.3).float()
    return spikes.requires_grad_(requires_grad)


def observations(batch: int) -> torch.Tensor:
    """Normalised-looking observations ``[batch, OBS_DIM]`` (standard normal clipped to +-3)."""
    return torch.randn(batch, OBS_DIM).clamp_(-3.0, 3.0)


def actor(name: str, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM) -> nn.Module:
    """The named actor with the benchmark's shapes and the papers' defaults otherwise."""
    config = ActorConfig(
        name=name, hidden_sizes=list(HIDDEN_SIZES), timesteps=TIMESTEPS, encoder_pop=POPULATION, decoder_pop=POPULATION
    )
    return build_actor(obs_dim, act_dim, config)


def microbenchmarks(plan: Plan) -> dict[str, dict[str, float]]:
    """Microseconds per call, ``{network: {"fwd_bwd_100": us, "fwd_1": us}}``, for the floor and each actor."""
    floor = dense_floor()
    calls: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        FLOOR: (
            training_call(floor, floor_inputs(TRAIN_BATCH, requires_grad=True)),
            inference_call(floor, floor_inputs(1, requires_grad=False)),
        )
    }
    for name in ACTORS:
        network = actor(name)
        calls[name] = (training_call(network, observations(TRAIN_BATCH)), inference_call(network, observations(1)))
    noisy = NoisyActorCall(actor("noisysan"), ColouredNoiseTable(1.0, TIMESTEPS))
    calls["noisysan"] = (training_call(noisy, observations(TRAIN_BATCH)), inference_call(noisy, observations(1)))
    results = {}
    for name, (train, infer) in calls.items():
        results[name] = {
            "fwd_bwd_100": 1e6 * seconds_per_call(train, plan),
            "fwd_1": 1e6 * seconds_per_call(infer, plan),
        }
    return results


def event_driven_inference(plan: Plan) -> dict[str, dict[str, float]]:
    """ILC-SAN forward under ``torch.no_grad()`` at :data:`EVENT_BATCHES`, microseconds per call through the
    compiled event-driven kernel (whatever ``EVENT_DRIVEN_MAX_BATCH`` says) and through the batched path:
    ``{batch: {"event": us, "batched": us}}``; the crossover is where ``EVENT_DRIVEN_MAX_BATCH`` should sit."""
    network = actor("ilcsan")
    results = {}
    for batch in EVENT_BATCHES:
        inputs = observations(batch)
        with mock.patch.object(spiking, "EVENT_DRIVEN_MAX_BATCH", batch):
            event = seconds_per_call(inference_call(network, inputs), plan)
        network.event_driven = False
        batched = seconds_per_call(inference_call(network, inputs), plan)
        network.event_driven = True
        results[str(batch)] = {"event": 1e6 * event, "batched": 1e6 * batched}
    return results


def print_micro_table(results: dict[str, dict[str, float]]) -> None:
    """Table of microseconds per call, with ratios to the dense floor (fwd+bwd@100) and to mlp (fwd@1)."""
    floor_us, mlp_us = results[FLOOR]["fwd_bwd_100"], results["mlp"]["fwd_1"]
    print(f"{'network':<12} {'fwd+bwd@100 us':>15} {'x floor':>8} {'fwd@1 us':>10} {'x mlp':>7}")
    for name, row in results.items():
        train_us, infer_us = row["fwd_bwd_100"], row["fwd_1"]
        print(f"{name:<12} {train_us:>15.1f} {train_us / floor_us:>8.2f} {infer_us:>10.1f} {infer_us / mlp_us:>7.2f}")


def micro_targets(results: dict[str, dict[str, float]]) -> list[Target]:
    """The two actor targets: ilcsan fwd+bwd@100 vs the dense floor, ilcsan fwd@1 vs mlp."""
    ilcsan = results["ilcsan"]
    return [
        Target(
            "ilcsan fwd+bwd@100 / dense floor",
            ilcsan["fwd_bwd_100"] / results[FLOOR]["fwd_bwd_100"],
            FLOOR_TARGET,
            False,
        ),
        Target("ilcsan fwd@1 / mlp fwd@1", ilcsan["fwd_1"] / results["mlp"]["fwd_1"], MLP_TARGET, False),
    ]


@dataclass(frozen=True)
class TD3Step:
    """One recipe's TD3 throughput and where its step time goes (milliseconds)."""

    steps_per_second: float
    target_forward_ms: float | None = None  # the target actor's no-grad forward at the training batch
    actor_update_ms: float | None = None  # forward, critic Q1, backward and optimizer step of the actor
    policy_delay: int = 1
    firing_rates: dict[str, float] | None = None  # spiking actors: per layer, during the timed actor update

    @property
    def step_ms(self) -> float:
        return 1e3 / self.steps_per_second

    @property
    def actor_ms(self) -> float | None:
        """Actor time per environment step (one gradient step per step; the actor update every ``policy_delay``)."""
        if self.target_forward_ms is None or self.actor_update_ms is None:
            return None
        return self.target_forward_ms + self.actor_update_ms / self.policy_delay

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "step_ms": self.step_ms, "actor_ms": self.actor_ms}


def sb3_td3_step(actor_name: str, plan: Plan) -> TD3Step:
    """TD3 environment steps per second for ``actor_name`` after learning has started, and its actor costs.

    The model is built from the recipe file with ``learning_starts = plan.fill_steps``; the fill and one
    training round (``train_freq`` steps, absorbing first-call costs) run untimed, then
    ``plan.timed_steps`` steps are timed. Afterwards the trained actor's two passes of a gradient step are
    timed on batches from its replay buffer (:func:`td3_actor_costs`; not for noisy actors, whose update also
    regenerates its noise).
    """
    config = RunConfig.load(
        CONFIG_DIR / RECIPES[actor_name],
        {"env": {"id": ENV_ID}, "algo": {"learning_starts": plan.fill_steps}},
    )
    warmup_steps = plan.fill_steps + config.algo.train_freq
    config.train.timesteps = warmup_steps + plan.timed_steps  # build_model caps the replay buffer at this
    env = make_vec_env(
        config.env.id, config.env.n_envs, config.train.seed, config.env.normalize_obs, config.env.clip_obs
    )
    try:
        model = build_model(config, env)
        model.learn(warmup_steps)
        start = time.perf_counter()
        model.learn(plan.timed_steps, reset_num_timesteps=False)
        rate = plan.timed_steps / (time.perf_counter() - start)
        if isinstance(model.actor.network, NoisySAN):
            return TD3Step(rate)
        return TD3Step(rate, **td3_actor_costs(model, plan), policy_delay=model.policy_delay)
    finally:
        env.close()


def td3_actor_costs(model: Any, plan: Plan) -> dict[str, Any]:
    """Milliseconds per call of the target actor's no-grad forward and of the actor update (as SB3's TD3 runs
    it: actor forward, critic Q1, backward, Adam step) at the model's batch size, cycling through 8 batches from
    its replay buffer; plus the actor's firing rates (spiking actors). Updates the actor."""
    normalizer = model.get_vec_normalize_env()
    batches = itertools.cycle([model.replay_buffer.sample(model.batch_size, normalizer) for _ in range(8)])

    def target_forward() -> None:
        with torch.no_grad():
            model.actor_target(next(batches).next_observations)

    def actor_update() -> None:
        observations = next(batches).observations
        loss = -model.critic.q1_forward(observations, model.actor(observations)).mean()
        model.actor.optimizer.zero_grad()
        loss.backward()
        model.actor.optimizer.step()

    costs: dict[str, Any] = {
        "target_forward_ms": 1e3 * seconds_per_call(target_forward, plan),
        "actor_update_ms": 1e3 * seconds_per_call(actor_update, plan),
    }
    if isinstance(model.actor.network, spiking.SpikingActor):
        costs["firing_rates"] = model.actor.network.activity().firing_rates
    return costs


def sb3_benchmark(plan: Plan) -> dict[str, TD3Step]:
    """TD3 throughput and actor costs per recipe, printed with ratios to mlp and the step-time breakdown."""
    results = {name: sb3_td3_step(name, plan) for name in RECIPES}
    mlp = results["mlp"]
    for name, result in results.items():
        ratio = result.steps_per_second / mlp.steps_per_second
        line = f"  {name:<9} {result.steps_per_second:8.1f} steps/s  {ratio:5.2f}x mlp"
        if result.actor_ms is not None:
            line += (
                f"  | step {result.step_ms:.2f} ms = actor {result.actor_ms:.2f} ms (target forward "
                f"{result.target_forward_ms:.2f} + update {result.actor_update_ms:.2f} / {result.policy_delay}) "
                f"+ rest {result.step_ms - result.actor_ms:.2f} ms"
            )
        print(line, flush=True)
        if result.firing_rates:
            rates = ", ".join(f"{layer} {rate:.2f}" for layer, rate in result.firing_rates.items())
            print(f"  {'':<9} firing rates of the trained actor: {rates}")
    spiking_step = results["ilcsan"]
    if spiking_step.actor_ms is not None and mlp.actor_ms is not None:
        budget = mlp.step_ms / SB3_TARGET
        rest = spiking_step.step_ms - spiking_step.actor_ms
        print(f"  ilcsan / mlp >= {SB3_TARGET} needs an ilcsan step <= {budget:.2f} ms: with its rest unchanged, "
              f"an actor <= {budget - rest:.2f} ms per step (now {spiking_step.actor_ms:.2f}; mlp's actor "
              f"{mlp.actor_ms:.2f})")  # fmt: skip
    return results


def replay_memory(env_id: str) -> dict[str, float]:
    """Bytes of a 1M-transition replay buffer on ``env_id``: ilcsan, noisysan, and storing the noise itself."""
    env = make_vec_env(env_id)
    sample = 1000  # allocate a small buffer and scale: SB3 allocates per transition
    args = (sample, env.observation_space, env.action_space, "cpu", 1)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()

    def per_transition(buffer: ReplayBuffer) -> float:
        return sum(a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray)) / sample

    plain, keyed = per_transition(ReplayBuffer(*args)), per_transition(NoiseKeyReplayBuffer(*args))
    stored_noise = TIMESTEPS * actor("noisysan", obs_dim, act_dim).noise_width * 4  # T x L float32 per transition
    return {
        "ilcsan": plain * REPLAY_TRANSITIONS,
        "noisysan": keyed * REPLAY_TRANSITIONS,
        "noisysan, noise stored": (plain + stored_noise) * REPLAY_TRANSITIONS,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing repeats and SB3 steps (smoke run)")
    parser.add_argument("--skip-sb3", action="store_true", help="run the actor microbenchmarks only")
    parser.add_argument("--skip-traffic", action="store_true", help="skip the traffic environment benchmark")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the report, and return (and optionally write) the results."""
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mode = "quick" if args.quick else "full"
    print(f"spikerl bench ({mode}): torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), ", end="")
    print(f"{os.cpu_count()} CPU(s)")
    shapes = f"obs {OBS_DIM}, act {ACT_DIM}; T={TIMESTEPS}, hidden {HIDDEN_SIZES}, {POPULATION} neurons per population"
    print(f"\nactor microbenchmarks ({ENV_ID} shapes: {shapes})", flush=True)
    micro = microbenchmarks(plan)
    print_micro_table(micro)
    targets = micro_targets(micro)
    print(f"\nilcsan no-grad forward, event-driven kernel vs batched path (EVENT_DRIVEN_MAX_BATCH = "
          f"{spiking.EVENT_DRIVEN_MAX_BATCH})")  # fmt: skip
    event = event_driven_inference(plan)
    for batch, row in event.items():
        print(f"  batch {batch:>3}: {row['event']:8.1f} us vs {row['batched']:8.1f} us  "
              f"({row['batched'] / row['event']:.2f}x)")  # fmt: skip
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "microseconds": micro,
        "event_driven_inference_us": event,
    }

    if not args.skip_sb3:
        window = f"{plan.timed_steps} steps timed after {plan.fill_steps} fill steps and one training round"
        print(f"\nSB3 TD3 on {ENV_ID}: {window}", flush=True)
        sb3 = sb3_benchmark(plan)
        ratio = sb3["ilcsan"].steps_per_second / sb3["mlp"].steps_per_second
        targets.append(Target("SB3 steps/s ilcsan / mlp", ratio, SB3_TARGET, True))
        report["sb3_td3_step"] = {name: step.to_dict() for name, step in sb3.items()}

    report["replay_buffer_bytes"] = {}
    for env_id in REPLAY_ENV_IDS:
        memory = replay_memory(env_id)
        print(f"\nreplay buffer, {REPLAY_TRANSITIONS:,} {env_id} transitions")
        for name, size in memory.items():
            print(f"  {name:<24} {size / 1e6:10.1f} MB  ({size / REPLAY_TRANSITIONS:,.0f} bytes/transition)")
        report["replay_buffer_bytes"][env_id] = memory

    if not args.skip_traffic:  # experiments.traffic_bench: our traffic env vs the raw simulator
        from experiments.traffic_bench import TARGET, traffic_benchmark

        report["traffic"] = traffic_benchmark(quick=args.quick)
        if "cityflow" in report["traffic"]:
            ratio = report["traffic"]["cityflow"]["ratio"]
            targets.append(Target("traffic env / raw CityFlow steps per CPU s", ratio, TARGET, True))

    print("\ntargets")
    for target in targets:
        print(f"  {target.describe()}")
    report["targets"] = {target.label: target.to_dict() for target in targets}
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
