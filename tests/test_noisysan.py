"""NoisySAN: coloured noise statistics, noisy neurons, noise-free equivalence with ILC-SAN, NoisyTD3 noise replay,
noise reduction, resume, and the replay-buffer memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli_helpers import TINY_ACTOR, tiny_td3_overrides
from stable_baselines3.common.buffers import ReplayBuffer

import train_agent
from agents.actors import build_actor
from agents.sb3 import NoiseKeyReplayBuffer, NoisyTD3
from agents.sb3.td3 import NoisySANPolicy
from envs import make_vec_env
from experiments.config import ConfigError, RunConfig
from neurons.lif import LIFParameters
from neurons.noise import ColouredNoiseTable
from neurons.noisy import NoisyCurrentLIF, NoisyNonSpikingReadout

SMALL_NOISE = {"noise_table_size": 2**16, "noise_horizon": 200}


# ---------------------------------------------------------------------------------------------- coloured noise
def episode_sequences(table: ColouredNoiseTable, channels: int, env_steps: int, episode: int = 3) -> np.ndarray:
    """Each channel's continuous sequence over one episode: ``[channels, env_steps * T]``."""
    windows = table.windows(np.full(env_steps, episode), np.arange(env_steps), channels)  # [T, steps, channels]
    return windows.permute(2, 1, 0).reshape(channels, -1).numpy()


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_mean_variance_and_spectral_slope(beta: float) -> None:
    table = ColouredNoiseTable(beta, steps_per_env_step=5, horizon=200, size=2**18, seed=1)
    assert abs(table.table.mean()) < 0.05 and abs(table.table.var() - 1.0) < 0.1
    x = episode_sequences(table, channels=256, env_steps=200)  # 1000 samples per channel
    assert abs(x.mean()) < 0.15
    assert abs((x**2).mean() - 1.0) < 0.25  # unit variance about the process mean 0
    power = (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(0)
    freqs = np.fft.rfftfreq(x.shape[1])
    band = (freqs >= 0.01) & (freqs <= 0.2)  # above the cutoff 1/(horizon*T) = 0.001
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.2)


def test_noise_windows_are_continuous_keyed_and_distinct() -> None:
    table = ColouredNoiseTable(1.0, steps_per_env_step=4, horizon=100, size=2**14, seed=0)
    whole = episode_sequences(table, channels=6, env_steps=10, episode=7)
    step3 = table.windows(np.array([7]), np.array([3]), 6)[:, 0].T.numpy()  # [channels, T]
    np.testing.assert_array_equal(step3, whole[:, 12:16])  # env step 3 = samples 12..15 of the same sequence
    other = episode_sequences(table, channels=6, env_steps=10, episode=8)
    assert not np.allclose(whole, other)
    assert np.abs(np.corrcoef(whole)[np.triu_indices(6, 1)]).max() < 0.9  # channels are different sequences
    with pytest.raises(ValueError, match="power of two"):
        ColouredNoiseTable(1.0, 5, size=3000 * 5)


# ------------------------------------------------------------------------------------------------ noisy neurons
def test_noisy_lif_hand_computed_trace() -> None:
    neuron = NoisyCurrentLIF(size=1, noise_scale=0.5)  # sigma = 0.5 / sqrt(1)
    current = torch.full((3, 1, 1), 0.2)
    charge = torch.tensor([1.0, 0.0, -1.0]).view(3, 1, 1)
    transmit = torch.tensor([0.2, -0.4, 0.6]).view(3, 1, 1)
    # I' = 0.2 + 0.5 * [1, 0, -1] = [0.7, 0.2, -0.3]
    # t0: c = 0.7, h = 0.7 > 0.5 -> s = 1, v = 0
    # t1: c = 0.35 + 0.2 = 0.55, h = 0.55 -> s = 1, v = 0
    # t2: c = 0.275 - 0.3 = -0.025, h = -0.025 -> s = 0
    # transmitted: s + 0.5 * [0.2, -0.4, 0.6] = [1.1, 0.8, 0.3]
    out = neuron(current, None, (charge, transmit))
    torch.testing.assert_close(out.view(-1), torch.tensor([1.1, 0.8, 0.3]))
    # without noise: h = 0.2, 0.45, 0.6875 -> spikes 0, 0, 1
    torch.testing.assert_close(neuron(current).view(-1), torch.tensor([0.0, 0.0, 1.0]))


def reference_noisy_lif(current, blocks, charge, transmit, sigma, p: LIFParameters) -> torch.Tensor:
    """The module docstring's equations, one step at a time (recurrence fed with the noisy spikes)."""
    steps, batch, features = current.shape
    pop = blocks.shape[1]
    c = torch.zeros(batch, features)
    v = torch.zeros(batch, features)
    s_hat = torch.zeros(batch, features)
    out = []
    for t in range(steps):
        feedback = torch.einsum("bgj,gij->bgi", s_hat.view(batch, -1, pop), blocks).reshape(batch, features)
        c = p.current_decay * c + current[t] + sigma * charge[t] + feedback
        h = p.voltage_decay * v + c
        s = (h > p.threshold).float()
        v = h * (1 - s)
        s_hat = s + sigma * transmit[t]
        out.append(s_hat)
    return torch.stack(out)


def test_noisy_lif_matches_stepwise_equations_with_recurrence() -> None:
    torch.manual_seed(0)
    neuron = NoisyCurrentLIF(size=8, noise_scale=0.5)
    current = torch.rand(6, 5, 8)
    blocks = torch.randn(2, 4, 4) * 0.5
    charge, transmit = torch.randn(6, 5, 8), torch.randn(6, 5, 8)
    expected = reference_noisy_lif(current, blocks, charge, transmit, neuron.sigma, neuron.params)
    torch.testing.assert_close(neuron(current, blocks, (charge, transmit)), expected)


def test_noisy_readout_learnable_scale() -> None:
    readout = NoisyNonSpikingReadout(size=2, noise_scale=1.0)  # sigma_a = 1 / sqrt(2)
    current = torch.ones(3, 1, 2)
    noise = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, -1.0]]).view(3, 1, 2)
    out = readout(current, noise)
    s = 2**-0.5
    torch.testing.assert_close(out, torch.tensor([[3 + 3 * s, 3 + 1 * s]]))
    out.sum().backward()
    torch.testing.assert_close(readout.sigma.grad, torch.tensor([3.0, 1.0]))  # d/d sigma = sum_t noise
    torch.testing.assert_close(readout(current), torch.full((1, 2), 3.0))


# --------------------------------------------------------------------------------------------------- the actor
def test_noise_off_equals_ilcsan_with_same_weights() -> None:
    torch.manual_seed(0)
    noisy = build_actor(6, 2, {"name": "noisysan", **TINY_ACTOR})
    plain = build_actor(6, 2, {"name": "ilcsan", **TINY_ACTOR})
    shared = {k: v for k, v in noisy.state_dict().items() if k != "readout.sigma"}
    plain.load_state_dict(shared)
    obs = torch.randn(16, 6)
    out_noisy, out_plain = noisy(obs), plain(obs)
    torch.testing.assert_close(out_noisy, out_plain, rtol=0, atol=0)
    out_noisy.square().sum().backward()
    out_plain.square().sum().backward()
    plain_grads = dict(plain.named_parameters())
    for name, param in noisy.named_parameters():
        if name != "readout.sigma":
            torch.testing.assert_close(param.grad, plain_grads[name].grad, rtol=0, atol=0)
    with torch.no_grad():  # the event-driven inference path too
        torch.testing.assert_close(noisy(obs[:2]), plain(obs[:2]))


def test_noise_layout_and_effect() -> None:
    torch.manual_seed(1)
    actor = build_actor(17, 6, {"name": "noisysan"})
    assert actor.noise_width == 2 * (256 + 256 + 60) + 6 == 1150  # 2 per spiking neuron + 1 per readout, HalfCheetah
    assert actor.noisy_neurons[0].sigma == pytest.approx(0.5 / 16)
    torch.testing.assert_close(actor.readout_noise_scale.detach(), torch.full((6,), 0.5 / np.sqrt(6)))
    obs = torch.randn(4, 17)
    noise = torch.randn(5, 4, 1150)
    assert not torch.allclose(actor(obs, noise), actor(obs))
    torch.testing.assert_close(actor(obs, noise), actor(obs, noise.clone()))  # a function of (obs, noise)
    with pytest.raises(ValueError, match=r"\[T, B, L\]"):
        actor(obs, torch.randn(5, 4, 100))


# -------------------------------------------------------------------------------------------------- NoisyTD3
def make_model(n_envs: int = 1, seed: int = 0, **kwargs) -> NoisyTD3:
    env = make_vec_env("Pendulum-v1", n_envs, seed)
    defaults = dict(
        learning_starts=100, batch_size=32, train_freq=25, gradient_steps=5, seed=seed,
        noise_reduction_ceiling=0.0, noise_reduction_floor=-1500.0,
        policy_kwargs={"actor_config": TINY_ACTOR, "net_arch": [32, 32]},
    )  # fmt: skip
    return NoisyTD3(NoisySANPolicy, env, **{**defaults, **SMALL_NOISE, **kwargs})


@pytest.fixture(scope="module")
def trained() -> tuple[NoisyTD3, list[tuple[int, torch.Tensor]]]:
    """NoisyTD3 on 2 Pendulum envs for 400 steps, with the noise tensors the actor received when acting."""
    model = make_model(n_envs=2)
    acted: list[tuple[int, torch.Tensor]] = []

    def record(module, args, kwargs):
        if "noise" in kwargs and not torch.is_grad_enabled():  # acting (the update runs with autograd)
            acted.append((model.replay_buffer.pos, kwargs["noise"].clone()))

    handle = model.actor.network.register_forward_pre_hook(record, with_kwargs=True)
    model.learn(400)
    handle.remove()
    return model, acted


def test_no_action_noise_and_one_stream_per_env(trained) -> None:
    model, acted = trained
    assert model.action_noise is None
    assert len(acted) == (400 - 100) // 2  # every step after the warm-up, both envs in one call
    buffer = model.replay_buffer
    assert (buffer.noise_episodes[:200, 0] != buffer.noise_episodes[:200, 1]).all()  # distinct streams
    np.testing.assert_array_equal(buffer.noise_steps[:200, 0], np.arange(200))  # Pendulum: 200-step episodes
    assert model.noise_streams.steps.tolist() == [0, 0] and model.noise_streams.next_episode == 4


def test_replayed_noise_equals_noise_used_when_acting(trained, tmp_path: Path) -> None:
    model, acted = trained
    buffer = model.replay_buffer
    for pos, noise in acted:
        replayed = model.exploration_noise(buffer.noise_episodes[pos], buffer.noise_steps[pos])
        torch.testing.assert_close(replayed, noise, rtol=0, atol=0)
    model.save(tmp_path / "model.zip")  # a loaded model rebuilds the same table from the seed
    loaded = NoisyTD3.load(tmp_path / "model.zip")
    pos, noise = acted[-1]
    torch.testing.assert_close(loaded.exploration_noise(buffer.noise_episodes[pos], buffer.noise_steps[pos]), noise)
    assert loaded.noise_streams.next_episode == model.noise_streams.next_episode
    samples = buffer.sample(64)
    assert samples.noise_episodes.shape == (64,) and samples.noise_steps.max() < 200


def test_actions_vary_between_episodes_only_through_network_noise(trained) -> None:
    model, _ = trained
    obs = torch.as_tensor(model.env.reset(), dtype=torch.float32)[:1].repeat(3, 1)  # one state, three episodes
    noise = model.exploration_noise(np.array([50, 51, 50]), np.array([10, 10, 10]))
    with torch.no_grad():
        actions = model.actor(obs, noise=noise)
        assert not torch.allclose(actions[0], actions[1])  # different episodes -> different noise -> actions
        torch.testing.assert_close(actions[0], actions[2], rtol=0, atol=0)  # same noise -> same action
        clean = model.actor(obs)
    torch.testing.assert_close(clean[0], clean[1], rtol=0, atol=0)  # evaluation: noise-free, deterministic
    first, _ = model.predict(obs[:1].numpy(), deterministic=True)
    again, _ = model.predict(obs[:1].numpy(), deterministic=False)
    np.testing.assert_array_equal(first, again)


def test_noise_reduction_coefficient_schedule() -> None:
    model = make_model(noise_reduction_ceiling=4000.0, noise_reduction_floor=0.0, noise_reduction_max=1.0)
    assert model.noise_reduction_coefficient() == 0.0  # before the first evaluation
    for ret, k in [(-50.0, 0.0), (0.0, 0.0), (1000.0, 0.25), (4000.0, 1.0), (6000.0, 1.5)]:
        model.report_evaluation(ret)
        assert model.noise_reduction_coefficient() == pytest.approx(k)
    off = make_model(noise_reduction_ceiling=None)
    off.report_evaluation(3000.0)
    assert off.noise_reduction_coefficient() == 0.0
    with pytest.raises(ValueError, match="action_noise"):
        make_model(action_noise=object())


def test_noise_reduction_shrinks_readout_sigma() -> None:
    """With the penalty dominating (huge k), the update drives mean(sigma_a) toward 0."""
    model = make_model(noise_reduction_max=1e4, actor_learning_rate=2e-2)
    model.learn(150)
    before = model.actor.network.readout_noise_scale.mean().item()
    model.report_evaluation(0.0)  # at the ceiling: k = k_max
    model.train(gradient_steps=60, batch_size=32)  # 30 actor updates
    after = model.actor.network.readout_noise_scale.mean().item()
    assert abs(after) < 0.5 * abs(before)
    target = model.actor_target.network.readout_noise_scale.mean().item()
    assert target != pytest.approx(after)  # the target follows only by polyak averaging


def test_key_buffer_costs_8_bytes_per_transition() -> None:
    env = make_vec_env("HalfCheetah-v5", 1, 0)
    args = (1000, env.observation_space, env.action_space, "cpu", 1)
    plain, keyed = ReplayBuffer(*args), NoiseKeyReplayBuffer(*args)

    def nbytes(buffer):
        return sum(a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray))

    assert (nbytes(keyed) - nbytes(plain)) / 1000 == 8
    env.close()


# ------------------------------------------------------------------------------------------- config and CLI
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"actor": {"name": "noisysan"}, "algo": {"name": "sac"}}, "td3 only"),
        ({"actor": {"name": "noisysan"}, "algo": {"action_noise": 0.1}}, "action_noise must be 0"),
        ({"actor": {"name": "ilcsan"}, "noise": {"beta": 2.0}}, "only to actor noisysan"),
        ({"actor": {"name": "noisysan"}, "env": {"id": "Pendulum-v1"}}, "reduction_ceilings.Pendulum"),
        ({"actor": {"name": "noisysan"}, "noise": {"table_size": 1000}}, "power of two"),
        ({"actor": {"name": "noisysan"}, "noise": {"reduction_ceilings": [1, 2]}}, "expected a mapping"),
    ],
)
def test_noisysan_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(data)


def test_noisysan_config_resolves_ceiling_and_drops_action_noise() -> None:
    config = RunConfig.from_dict({"actor": {"name": "noisysan"}, "env": {"id": "Hopper-v5"}})
    assert config.algo.action_noise == 0.0 and config.noise.ceiling("Hopper-v5") == 4000.0
    noise = {"reduction_ceilings": {"Pendulum": 0}, "reduction_floor": -1500}  # Pendulum returns are negative
    config = RunConfig.from_dict({"actor": {"name": "noisysan"}, "env": {"id": "Pendulum-v1"}, "noise": noise})
    assert config.noise.ceiling("Pendulum-v1") == 0.0
    with pytest.raises(ConfigError, match="must exceed"):
        RunConfig.from_dict(
            {"actor": {"name": "noisysan"}, "env": {"id": "Pendulum-v1"}, "noise": {**noise, "reduction_floor": 0}}
        )
    assert "noise" not in RunConfig.from_dict({"actor": {"name": "ilcsan"}}).to_dict()


def test_cli_resume_restores_noise_streams(tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = [
        *tiny_td3_overrides(snn_steps=3, every=300, eval_episodes=2),
        *("--set", "noise.table_size=65536", "--set", "noise.horizon=100"),
    ]
    argv = ["train", "--actor", "noisysan", "--algo", "td3", "--env", "InvertedPendulum-v5", "--timesteps", "300"]
    assert train_agent.main([*argv, "--run-dir", str(run), *common]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["noise"]["beta"] == 1.0 and config["algo"]["action_noise"] == 0.0
    first = NoisyTD3.load(run / "model.zip")
    assert first.latest_eval_return is not None  # the evaluation reached the noise reduction
    assert train_agent.main(["train", "--resume", str(run), "--timesteps", "600", "--no-progress"]) == 0
    resumed = NoisyTD3.load(run / "model.zip")
    assert resumed.noise_streams.next_episode > first.noise_streams.next_episode
    resumed.load_replay_buffer(sorted((run / "checkpoints").glob("step_*"))[-1] / "replay_buffer.pkl")
    buffer = resumed.replay_buffer
    assert buffer.full and buffer.buffer_size == 600 and buffer.noise_steps.max() > 0
    keys = buffer.noise_episodes[:300, 0], buffer.noise_steps[:300, 0]  # stored before the resume
    torch.testing.assert_close(resumed.exploration_noise(*keys), first.exploration_noise(*keys), rtol=0, atol=0)
    assert set(buffer.noise_episodes[300:600, 0].tolist()).isdisjoint(buffer.noise_episodes[:300, 0].tolist())
