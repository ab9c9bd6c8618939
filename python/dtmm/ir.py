"""dtmm's model IR: a graph of int8 ops over named tensors with numpy weights.

Front ends (TFLite, ONNX) produce it, pruning transforms it, the compiler
lowers it to a model blob. Layouts follow TFLite: NHWC activations, OHWI conv
filters, [1, H, W, C*M] depthwise filters, [out, in] fully-connected weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Op types the runtime executes (names follow TFLite's builtin operators).
SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MUL",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "PAD",
    "CONCATENATION",
    "RESHAPE",
    "SOFTMAX",
    "LOGISTIC",
    "QUANTIZE",
    "DEQUANTIZE",
)


@dataclass
class Tensor:
    """A tensor: shape, dtype, quantization, and data when it is a constant.

    ``scale`` and ``zero_point`` are 1-D arrays: one entry for per-tensor
    quantization, one per channel along ``quant_axis`` for per-channel weights,
    empty for an unquantized tensor.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    quant_axis: int = 0
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    """One operator: its type, input/output tensor names and options."""

    type: str
    inputs: list[str | None]  # None marks an absent optional input (bias)
    outputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Model:
    """A whole graph, ops in execution order."""

    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    source: str = ""
    # How conv and fully connected layers round their requantization:
    # "tflite" (TFLite's two roundings, bit-exact with TFLite Micro; the
    # default, and what TFLite files get) or "onnx" (one rounding, as ONNX's
    # QuantizeLinear after a float conv; what ONNX files get, so that results
    # agree with onnxruntime's). Host and device compute the same either way.
    rounding: str = "tflite"

    def copy(self) -> Model:
        """A deep copy: pruning never mutates the model it was given."""
        return copy.deepcopy(self)

    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def summary(self) -> str:
        lines = [f"dtmm.Model from {self.source or '<memory>'}: {len(self.ops)} ops"]
        for op in self.ops:
            out = self.tensors[op.outputs[0]]
            lines.append(f"  {op.name:<40} {op.type:<18} -> {list(out.shape)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Model(ops={len(self.ops)}, inputs={self.inputs}, outputs={self.outputs}, "
            f"source={self.source!r})"
        )
