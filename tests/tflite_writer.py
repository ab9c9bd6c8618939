"""Builds single-op int8 .tflite models for the per-op tests, without TensorFlow.

Uses tflite-micro's model editor (pinned in the test extra); every model is
also run by the TFLite Micro interpreter, so an invalid one fails loudly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

TT = schema.TensorType
OP = schema.BuiltinOperator
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
PAD = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}


class Graph:
    """A one-subgraph model assembled tensor by tensor."""

    def __init__(self) -> None:
        self.sg = me.Subgraph()
        self.count = 0

    def tensor(
        self,
        shape: tuple[int, ...],
        dtype: int = TT.INT8,
        scale: Any = None,
        zero_point: Any = 0,
        axis: int | None = None,
        data: np.ndarray | None = None,
    ) -> me.Tensor:
        self.count += 1
        q = None
        if scale is not None:
            scales = [float(s) for s in np.atleast_1d(scale)]
            zps = [int(z) for z in np.atleast_1d(zero_point)]
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            q = me.Quantization(
                scales if len(scales) > 1 else scales[0], zps if len(zps) > 1 else zps[0], axis=axis
            )
        return self.sg.add_tensor(
            shape=tuple(int(d) for d in shape),
            dtype=dtype,
            quantization=q,
            name=f"t{self.count}",
            data=data,
        )

    def op(
        self, code: int, inputs: list, outputs: list, options: Any = None, options_type: int = 0
    ) -> None:
        op = self.sg.add_operator(opcode=code, inputs=inputs, outputs=outputs)
        if options is not None:
            op._fb.builtinOptionsType = options_type
            op._fb.builtinOptions = options

    def build(self, inputs: list, outputs: list) -> bytes:
        self.sg.inputs = inputs
        self.sg.outputs = outputs
        model = me.Model(subgraphs=[self.sg])
        return bytes(model.build())


def options(cls_name: str, **fields: Any) -> tuple[Any, int]:
    """A builtin options object and its union type, e.g. options('Conv2DOptions', strideW=2)."""
    obj = getattr(schema, cls_name + "T")()
    for k, v in fields.items():
        setattr(obj, k, v)
    return obj, getattr(schema.BuiltinOptions, cls_name)
