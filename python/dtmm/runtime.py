"""dtmm.Runtime: run a compiled model on the host, bit-identical to the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape, dtype and quantization of a model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


@dataclass(frozen=True)
class OpProfile:
    name: str
    type: str
    seconds: float


class Runtime:
    """Host interpreter over the device runtime's C API.

    ``Runtime(blob)`` validates the blob completely (a corrupt blob raises
    ``ValueError``) and owns an arena of exactly ``arena_size`` bytes.
    ``reference=True`` runs the readable reference kernels instead of the
    optimized ones; both give identical outputs (the tests check it).
    """

    def __init__(self, blob: bytes | bytearray | memoryview, *, reference: bool = False) -> None:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"Runtime expects the compiled blob as bytes, got {type(blob).__name__}"
            )
        self._core = _core.Interpreter(bytes(blob), reference)
        self.inputs = [self._info(d) for d in self._core.inputs()]
        self.outputs = [self._info(d) for d in self._core.outputs()]

    @staticmethod
    def _info(d: dict) -> TensorInfo:
        return TensorInfo(
            d["name"], tuple(d["shape"]), np.dtype(d["dtype"]), d["scale"], d["zero_point"]
        )

    @property
    def arena_size(self) -> int:
        """Bytes of working memory (activations and scratch) the model needs."""
        return int(self._core.arena_size)

    def _batches(self, x: Any, info: TensorInfo, which: int) -> list[np.ndarray]:
        """Split one input into per-inference arrays, checking dtype and shape."""
        a = np.asarray(x)
        if a.dtype != info.dtype:
            raise ValueError(
                f"input {which} ('{info.name}'): expected dtype {info.dtype}, got {a.dtype}"
            )
        shape = info.shape
        if a.shape == shape:
            return [a]
        if len(shape) >= 1 and shape[0] == 1:
            if a.shape == shape[1:]:
                return [a.reshape(shape)]
            if a.ndim == len(shape) and a.shape[1:] == shape[1:]:
                return [a[i : i + 1] for i in range(a.shape[0])]
        raise ValueError(
            f"input {which} ('{info.name}'): expected shape {shape} "
            f"(or a batch [N, {', '.join(map(str, shape[1:]))}]), got {a.shape}"
        )

    def run(self, x: Any) -> np.ndarray | list[np.ndarray]:
        """Run inference. ``x`` is an array (a list of arrays for several inputs),
        with or without the batch dimension; a batch of N runs N inferences.
        Returns the output array, or a list when the model has several outputs."""
        xs = list(x) if len(self.inputs) > 1 else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs, got {len(xs)}")
        per_input = [self._batches(a, info, i) for i, (a, info) in enumerate(zip(xs, self.inputs))]
        n = len(per_input[0])
        if any(len(b) != n for b in per_input):
            raise ValueError(f"inputs have different batch sizes: {[len(b) for b in per_input]}")
        results: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for i in range(n):
            for j, batches in enumerate(per_input):
                self._core.set_input(j, np.ascontiguousarray(batches[i]))
            self._core.invoke()
            for j in range(len(self.outputs)):
                results[j].append(self._core.get_output(j))
        outs = [r[0] if n == 1 else np.concatenate(r, axis=0) for r in results]
        return outs[0] if len(outs) == 1 else outs

    def profile(self, x: Any = None, repeats: int = 10) -> list[OpProfile]:
        """Per-op host time (median seconds over ``repeats`` runs) for input ``x``
        (zeros when omitted)."""
        if x is not None:
            self.run(x)
        else:
            for j, info in enumerate(self.inputs):
                self._core.set_input(j, np.zeros(info.shape, info.dtype))
        samples = np.array([self._core.invoke_timed() for _ in range(max(1, repeats))])
        medians = np.median(samples, axis=0)
        return [
            OpProfile(op["name"], op["type"], float(t)) for op, t in zip(self._core.ops(), medians)
        ]

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}{list(i.shape)}:{i.dtype}" for i in self.inputs)
        outs = ", ".join(f"{o.name}{list(o.shape)}:{o.dtype}" for o in self.outputs)
        return f"Runtime(inputs=[{ins}], outputs=[{outs}], arena_size={self.arena_size})"
