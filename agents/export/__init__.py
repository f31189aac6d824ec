"""Integer-only export of spiking actors: quantisation, NumPy integer reference, C99 generation, overflow
proof, NIR side artefact and quantisation-aware fine-tuning. The runner (run directory -> artefacts + fidelity
report, firmware under QEMU) is :mod:`experiments.export`."""

from agents.export.quantization import ExportError, IntegerPolicy, quantize_actor
from agents.export.reference import IntegerReference

__all__ = ["ExportError", "IntegerPolicy", "IntegerReference", "quantize_actor"]
