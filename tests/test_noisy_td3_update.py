"""NoisyTD3's update is SB3's TD3 update: with all-zero network noise it performs the same updates, bit for bit.

NoisyTD3 runs SB3's own ``TD3.train`` and only adds the replayed noise (and the noise-reduction gradient)
through hooks, so a change in SB3's update reaches both algorithms alike; this test pins that down.
"""

from __future__ import annotations

import numpy as np
import torch
from cli_helpers import TINY_ACTOR
from stable_baselines3.common.logger import configure

from agents.sb3 import TD3, NoiseKeyReplayBuffer, NoisyTD3
from agents.sb3.td3 import NoisySANPolicy
from envs import make_vec_env

TRANSITIONS, GRADIENT_STEPS, BATCH = 300, 8, 32


def build(algorithm: type, env, **kwargs):
    model = algorithm(
        NoisySANPolicy, env, learning_starts=0, batch_size=BATCH, seed=0, actor_learning_rate=3e-3,
        policy_kwargs={"actor_config": TINY_ACTOR, "net_arch": [32, 32]}, **kwargs,
    )  # fmt: skip
    model.set_logger(configure(None, []))
    return model


def fill(models: list, env) -> None:
    """The same random transitions (and, for NoisyTD3, noise keys) in every model's replay buffer."""
    rng = np.random.default_rng(0)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    for step in range(TRANSITIONS):
        obs, next_obs = rng.normal(size=(2, 1, obs_dim)).astype(np.float32)
        action = rng.uniform(-1, 1, size=(1, act_dim)).astype(np.float32)
        reward, done = rng.normal(size=1).astype(np.float32), np.array([step % 50 == 49])
        for model in models:
            if isinstance(model.replay_buffer, NoiseKeyReplayBuffer):
                model.replay_buffer.store_noise_keys(np.array([step // 50]), np.array([step % 50]))
            model.replay_buffer.add(obs, next_obs, action, reward, done, [{}])


def train(model) -> None:
    np.random.seed(1)
    torch.manual_seed(1)
    model.train(GRADIENT_STEPS, BATCH)


def test_noisy_td3_with_zero_noise_updates_bit_identically_to_td3() -> None:
    env = make_vec_env("Pendulum-v1", 1, 0)
    noisy = build(NoisyTD3, env, noise_table_size=2**12, noise_horizon=50)
    plain = build(TD3, env)  # SB3's own ReplayBuffer
    plain.policy.load_state_dict(noisy.policy.state_dict())
    noisy.noise_table.table[:] = 0.0
    fill([noisy, plain], env)
    seen: list[torch.Tensor] = []
    handle = noisy.actor.network.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(kwargs.get("noise")), with_kwargs=True
    )
    before = {k: v.clone() for k, v in noisy.policy.state_dict().items()}
    train(noisy)
    train(plain)
    handle.remove()
    actor_updates = GRADIENT_STEPS // noisy.policy_delay
    assert sum(n is not None for n in seen) == actor_updates  # each actor-loss forward got the replayed noise
    assert all(n is None or (n.shape[1] == BATCH and not n.any()) for n in seen)
    after_noisy, after_plain = noisy.policy.state_dict(), plain.policy.state_dict()
    for key, value in after_plain.items():
        assert torch.equal(after_noisy[key], value), key
    changed = [k for k, v in after_plain.items() if not torch.equal(v, before[k])]
    assert any(k.startswith("actor.network.layers") for k in changed)
    assert any(k.startswith("critic.") for k in changed) and any(k.startswith("actor_target.") for k in changed)
    env.close()


def test_replayed_noise_and_noise_reduction_change_the_update() -> None:
    """With real noise the actor update differs from TD3's; the noise-reduction term lowers sigma_a."""
    env = make_vec_env("Pendulum-v1", 1, 0)
    models = [build(NoisyTD3, env, noise_table_size=2**12, noise_horizon=50) for _ in range(2)]
    reduced, plain = models
    reduced.noise_reduction_ceiling, reduced.noise_reduction_max = 1.0, 1e3
    reduced.report_evaluation(1.0)
    plain.policy.load_state_dict(reduced.policy.state_dict())
    fill(models, env)
    sigma = reduced.actor.network.readout_noise_scale.detach().clone()
    train(reduced)
    train(plain)
    assert (reduced.actor.network.readout_noise_scale < sigma).all()
    assert reduced.actor.network.readout_noise_scale.mean() < plain.actor.network.readout_noise_scale.mean()
    env.close()
