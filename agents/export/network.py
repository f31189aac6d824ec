"""What the one export pipeline (:func:`experiments.export.pipeline.export_network`) needs of a quantised network.

The spiking actor (:class:`agents.export.quantization.IntegerPolicy`) and the evolved blimp controller
(:class:`agents.export.blimp_quantization.IntegerBlimpController`) implement it; they are the only difference between
the two exports. Each is built from its float network by its own quantiser (``quantize_actor``, ``quantize_network``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

N = TypeVar("N", bound="IntegerNetwork")


class IntegerNetwork(ABC):
    """A quantised network: integer :meth:`arrays` and a JSON :meth:`spec`, saved together as one ``.npz`` and
    rebuilt by :meth:`from_npz`; :meth:`check_overflow` proves the worst-case state bound of every layer
    (:class:`agents.export.overflow.LayerBound` list; raises naming the first layer that does not fit);
    :meth:`worst_case_sops` bounds the synaptic operations of one call; :meth:`reference` is a fresh NumPy integer
    executor, the definition that :meth:`generate_c` (:class:`agents.export.c_codegen.GeneratedC`, deterministic)
    matches bit for bit; :meth:`c_executor` wraps the built C library with the reference's interface."""

    npz_name: ClassVar[str]  # the saved network in an export directory

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def spec(self) -> dict: ...

    @classmethod
    @abstractmethod
    def from_npz(cls: type[N], spec: dict, data: Any) -> N: ...

    @abstractmethod
    def check_overflow(self, state_bits: int = 32) -> list: ...

    @abstractmethod
    def worst_case_sops(self) -> int: ...

    @abstractmethod
    def reference(self) -> Any: ...

    @abstractmethod
    def generate_c(self, prefix: str) -> Any: ...

    @abstractmethod
    def c_executor(self, library: Path, prefix: str) -> Any: ...

    def save(self, path: Path) -> None:
        """Write ``path`` (``.npz``) with every array and the spec as a JSON string."""
        arrays = self.arrays()
        arrays["spec_json"] = np.frombuffer(json.dumps(self.spec()).encode(), dtype=np.uint8)
        np.savez(path, **arrays)

    @classmethod
    def load(cls: type[N], path: Path) -> N:
        """Read a network written by :meth:`save`."""
        with np.load(path) as data:
            return cls.from_npz(json.loads(data["spec_json"].tobytes().decode()), data)
