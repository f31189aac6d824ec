"""Quantisation-aware fine-tuning (``--qat-steps``): recover return lost by int8 weight rounding.

The actor's weights are fake-quantised per output row exactly as :func:`agents.export.quantization.quantize_weights`
does (``round(W k) / k`` with ``k = 127 / max|W_row|``), with a straight-through estimator for the gradient. The
actor is then trained with the run's *float* critic (frozen) on states from the run's replay buffer::

    loss = -Q1(s, tanh(actor_fq(s))) + bc_weight * || tanh(actor_fq(s)) - tanh(actor_float(s)) ||^2

The behaviour-cloning term keeps the fine-tuned actor near the states where the frozen critic is accurate.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm import trange

from agents.actors import SpikingActor
from agents.export.quantization import WEIGHT_MAX, ExportError


class RowFakeQuant(nn.Module):
    """Per-row symmetric int8 fake quantisation with a straight-through gradient; rows are the first axis
    of a 2-D weight, or the middle axis of grouped ``[G, P, P]`` blocks."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        rows = weight.reshape(-1, weight.shape[-1])
        peak = rows.detach().abs().amax(dim=1, keepdim=True)
        scale = torch.where(peak > 0, WEIGHT_MAX / peak.clamp_min(1e-30), torch.full_like(peak, WEIGHT_MAX))
        quantised = (torch.round(rows * scale).clamp(-WEIGHT_MAX, WEIGHT_MAX) / scale).reshape(weight.shape)
        return weight + (quantised - weight).detach()


def fake_quantised_tensors(actor: SpikingActor) -> list[tuple[nn.Module, str]]:
    """``(module, parameter name)`` of every weight that the integer export rounds to int8."""
    tensors = [(layer, "weight") for layer in actor.layers]
    tensors.append((actor._readout_synapses(), "weight"))
    if actor.intra is not None and actor.intra.has_weights:
        tensors.append((actor.intra, "weight"))
    return tensors


def check_finetunable(model) -> SpikingActor:
    """``model``'s actor; raises :class:`ExportError` unless it is spiking and ``model`` has a Q critic."""
    critic = getattr(model, "critic", None)
    if critic is None or not hasattr(critic, "q1_forward"):
        raise ExportError("quantisation-aware fine-tuning needs a Q critic (td3, ddpg or sac runs)")
    if not isinstance(model.actor_network, SpikingActor):
        raise ExportError("quantisation-aware fine-tuning applies to spiking actors only")
    return model.actor_network


def finetune_actor(
    model,
    steps: int,
    seed: int = 0,
    batch_size: int = 100,
    learning_rate: float = 1e-5,
    bc_weight: float = 1.0,
) -> tuple[SpikingActor, dict]:
    """Fine-tuned copy of ``model``'s actor (float latent weights, ready for :func:`quantize_actor`) and a
    summary dict. Needs an off-policy model (TD3, DDPG, SAC) with its replay buffer loaded."""
    source = check_finetunable(model)
    if getattr(model, "replay_buffer", None) is None or model.replay_buffer.size() == 0:
        raise ExportError("quantisation-aware fine-tuning samples states from the replay buffer, which is empty")
    critic = model.critic
    stats = getattr(model, "obs_normalization", None)
    torch.manual_seed(seed)
    actor = copy.deepcopy(source)
    actor.train()
    for module, name in fake_quantised_tensors(actor):
        parametrize.register_parametrization(module, name, RowFakeQuant())
    optimizer = torch.optim.Adam(actor.parameters(), lr=learning_rate)
    critic.eval()
    for parameter in critic.parameters():
        parameter.requires_grad_(False)
    losses = []
    for _ in trange(steps, desc="QAT", leave=False, disable=None):
        raw = model.replay_buffer.sample(batch_size).observations.cpu().numpy()
        obs = torch.as_tensor(stats.normalize(raw) if stats is not None else raw, dtype=torch.float32)
        with torch.no_grad():
            target = torch.tanh(source(obs))
        action = torch.tanh(actor(obs))
        loss = -critic.q1_forward(obs, action).mean() + bc_weight * (action - target).pow(2).sum(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    for module, name in fake_quantised_tensors(actor):
        parametrize.remove_parametrizations(module, name, leave_parametrized=False)
    for parameter in critic.parameters():
        parameter.requires_grad_(True)
    actor.eval()
    window = max(1, min(100, steps // 10))
    info = {
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "bc_weight": bc_weight,
        "loss_first": sum(losses[:window]) / window,
        "loss_last": sum(losses[-window:]) / window,
    }
    return actor, info
