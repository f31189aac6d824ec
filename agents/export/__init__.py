"""Integer-only export of spiking actors: quantisation, NumPy integer reference, C99 generation, overflow
proof, NIR side artefact, fidelity report and quantisation-aware fine-tuning (spec integer_export.md)."""

from agents.export.quantization import ExportError, IntegerPolicy, quantize_actor
from agents.export.reference import IntegerReference

__all__ = ["ExportError", "IntegerPolicy", "IntegerReference", "quantize_actor"]
