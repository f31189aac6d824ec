"""NIR side artefact: the dequantised network as a NIR graph (CubaLIF hidden layers, CubaLI readout).

Graph::

    input (N*P spikes) -> hidden1.affine -> hidden1 (CubaLIF) -> ... -> output.affine -> output (CubaLIF)
    output -> output.recurrent (Linear, block diagonal intra-layer weights) -> output        (ILC-SAN only)
    output -> readout.affine (Affine, grouped per action) -> readout (CubaLI) -> action (M)

Discretisation (forward Euler, ``dt`` = one SNN step): ``tau_syn = dt / (1 - alpha)``, ``w_in = tau_syn / dt``,
``tau_mem = dt / (1 - beta)``, ``r = tau_mem / dt`` reproduce ``I <- alpha I + x`` and ``v <- beta v + I``.
Weights, biases and thresholds are the *dequantised* integer values (``Wq / k``), so an importer sees the
exported network, not the original float one.

Known limits (NIR cannot carry the integer semantics; the C/NumPy artefacts are the deployable truth):

* no time step or rounding in the graph: ``dt``, ``T``, reset order and rounding live in metadata only;
* the population encoder and observation normalisation are not NIR primitives: their parameters are metadata;
* the readout's pure integration (decay 1) is written as ``tau_mem = 1e9 dt``, and the action is
  ``tanh(v_T / divisor)`` (metadata), which no importer applies;
* importers that apply one step of synaptic delay per layer will not match the same-step propagation here;
* snnTorch, Lava-dl and SpiNNaker2 cannot import CubaLI readouts; the recurrent edge needs graph cycles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.export.quantization import DECAY_BITS, ENCODER_THRESHOLD_Q15, Z_FRACTION_BITS, IntegerPolicy

DT = 1.0  # one SNN step
INTEGRATOR_TAU = 1e9  # stands in for tau = inf (decay exactly 1)


def _import_nir():
    try:
        import nir
    except ImportError as err:  # pragma: no cover - nir is in the ``export`` extra
        raise ImportError("NIR export needs the 'nir' package: pip install 'spikerl[export]'") from err
    return nir


def _taus(decay_q: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    decay = decay_q / (1 << DECAY_BITS)
    tau = DT / (1.0 - decay) if decay < 1.0 else INTEGRATOR_TAU * DT
    return np.full(n, tau), np.full(n, tau / DT)


def to_nir_graph(policy: IntegerPolicy):
    """Build the ``nir.NIRGraph`` of ``policy`` (float64 dequantised parameters)."""
    nir = _import_nir()
    headroom = float(1 << policy.headroom_bits)
    nodes: dict = {"input": nir.Input(input_type=np.array([policy.layer_widths[0]]))}
    edges: list[tuple[str, str]] = []
    previous = "input"
    for layer in policy.layers:
        weight = layer.weight_t.T.astype(np.float64) / layer.scale[:, None]
        bias = layer.bias / (layer.scale * headroom)
        tau_syn, w_in = _taus(layer.current_decay, layer.fan_out)
        tau_mem, r = _taus(layer.voltage_decay, layer.fan_out)
        nodes[f"{layer.name}.affine"] = nir.Affine(weight=weight, bias=bias)
        nodes[layer.name] = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r,
            v_leak=np.zeros(layer.fan_out),
            v_threshold=layer.threshold / (layer.scale * headroom),
            v_reset=np.zeros(layer.fan_out),
            w_in=w_in,
        )
        edges += [(previous, f"{layer.name}.affine"), (f"{layer.name}.affine", layer.name)]
        if layer.blocks_t is not None:
            groups, pop, _ = layer.blocks_t.shape
            recurrent = np.zeros((layer.fan_out, layer.fan_out))
            for g in range(groups):
                block = layer.blocks_t[g].T.astype(np.float64)  # [to, from]
                recurrent[g * pop : (g + 1) * pop, g * pop : (g + 1) * pop] = block
            nodes[f"{layer.name}.recurrent"] = nir.Linear(weight=recurrent / layer.scale[:, None])
            edges += [(layer.name, f"{layer.name}.recurrent"), (f"{layer.name}.recurrent", layer.name)]
        previous = layer.name
    readout = policy.readout
    act, pop = policy.act_dim, policy.decoder_pop
    dense = np.zeros((act, act * pop))
    for d in range(act):
        dense[d, d * pop : (d + 1) * pop] = readout.weight[d] / readout.scale[d]
    nodes["readout.affine"] = nir.Affine(weight=dense, bias=readout.bias / (readout.scale * headroom))
    tau_mem, r = _taus(readout.decay, act)
    nodes["readout"] = nir.CubaLI(tau_syn=np.full(act, DT), tau_mem=tau_mem, r=r, v_leak=np.zeros(act), w_in=1.0)
    nodes["action"] = nir.Output(output_type=np.array([act]))
    edges += [(previous, "readout.affine"), ("readout.affine", "readout"), ("readout", "action")]
    divisor = policy.timesteps if policy.actor == "popsan" or readout.mode == "mean" else 1
    metadata = {
        "producer": "spikerl integer export",
        "actor": policy.actor,
        "dt": DT,
        "T": policy.timesteps,
        "reset": "zero, keep current input (v <- 0 after a spike; I keeps integrating)",
        "update_order": "I then V, same-step propagation between layers, state zeroed every control step",
        "readout_decode": readout.mode,
        "action": f"tanh(readout v / {divisor}) mapped linearly onto [action_low, action_high]",
        "action_low": policy.action_low,
        "action_high": policy.action_high,
        "encoder": "gaussian receptive fields + regular (integrate, spike above threshold, subtract) spikes",
        "encoder_mean": policy.encoder_mean.astype(np.float64) / (1 << Z_FRACTION_BITS),
        "encoder_std": (1 << Z_FRACTION_BITS) / policy.encoder_rho.astype(np.float64),
        "encoder_threshold": ENCODER_THRESHOLD_Q15 / 32767.0,
        "obs_clip": policy.clip / (1 << Z_FRACTION_BITS),
        "quantization": f"int8 per-row weights, int32 states with H={policy.headroom_bits}, Q{DECAY_BITS} decays",
        "limits": "not bit-exact on any backend; see agents/export/nir_export.py",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(policy: IntegerPolicy, path: Path) -> None:
    """Write ``policy``'s NIR graph to ``path`` (HDF5)."""
    nir = _import_nir()
    nir.write(str(path), to_nir_graph(policy))


def read_nir(path: Path):
    """Read a NIR graph back (for round-trip checks)."""
    return _import_nir().read(str(path))
