"""Integer-only export of spiking actors and evolved blimp controllers: quantisation, NumPy integer reference, C99
generation, overflow proof, NIR side artefact and quantisation-aware fine-tuning. Both quantised networks implement
:class:`IntegerNetwork`, what the one export pipeline (run directory -> artefacts + fidelity report, firmware under
QEMU: :mod:`experiments.export`) needs."""

from agents.export.network import IntegerNetwork
from agents.export.quantization import ExportError, IntegerPolicy, quantize_actor
from agents.export.reference import IntegerReference

__all__ = ["ExportError", "IntegerNetwork", "IntegerPolicy", "IntegerReference", "quantize_actor"]
