"""dtmm.compile: lower a dtmm Model to a model blob (bytes).

The C++ builder (through the private ``_core`` module) owns the byte layout
and computes every op's fixed-point parameters; this module decides what to
emit: constants, activations at their planned arena offsets, and the ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .errors import ModelError, UnsupportedOpError
from .graph_passes import fold_constants
from .ir import Model, Op, Tensor
from .memory import plan_memory

_ABSENT = 0xFFFFFFFF
_DTYPE_CODES = {
    np.dtype(np.int8): _core.INT8,
    np.dtype(np.int32): _core.INT32,
    np.dtype(np.float32): _core.FLOAT32,
}
_ACTIVATION_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDING_CODES = {"VALID": _core.PAD_VALID, "SAME": _core.PAD_SAME}


def compile(model: Model, **options: Any) -> bytes:  # noqa: A001 - the public name
    """Compile ``model`` into a dtmm model blob for :class:`dtmm.Runtime` or firmware."""
    if options:
        raise TypeError(f"unknown compile option(s): {', '.join(sorted(options))}")
    model = fold_constants(model)
    plan = plan_memory(model)
    builder = _core.BlobBuilder()
    index: dict[str, int] = {}

    def tensor_index(name: str) -> int:
        if name not in index:
            index[name] = _add_tensor(builder, model.tensors[name], plan.offsets.get(name))
        return index[name]

    for name in model.inputs:
        tensor_index(name)
    for op in model.ops:
        ins = [_ABSENT if t is None else tensor_index(t) for t in op.inputs]
        outs = [tensor_index(t) for t in op.outputs]
        try:
            builder.add_op(_core.OP_TYPES[op.type], ins, outs, _op_options(model, op), op.name)
        except ValueError as e:
            raise ModelError(f"{op.type} '{op.name}': {e}") from e
    builder.set_io(
        [tensor_index(t) for t in model.inputs], [tensor_index(t) for t in model.outputs]
    )
    return builder.finish(plan.arena_size)


def _add_tensor(builder: Any, t: Tensor, offset: int | None) -> int:
    code = _DTYPE_CODES.get(np.dtype(t.dtype))
    if code is None:
        raise ModelError(f"tensor '{t.name}' has dtype {t.dtype}, which the runtime cannot hold")
    scale = float(t.scale[0]) if len(t.scale) else 0.0
    zero_point = int(t.zero_point[0]) if len(t.zero_point) else 0
    shape = [int(d) for d in t.shape]
    if t.is_constant:
        per_channel = len(t.scale) > 1
        return builder.add_constant(
            t.name,
            code,
            shape,
            scale,
            zero_point,
            [float(s) for s in t.scale] if per_channel else [],
            [int(z) for z in t.zero_point] if per_channel else [],
            int(t.quant_axis),
            np.ascontiguousarray(t.data, dtype=t.dtype).tobytes(),
        )
    if offset is None:
        raise ModelError(f"activation '{t.name}' is never produced or consumed")
    return builder.add_activation(t.name, code, shape, scale, zero_point, offset)


def _op_options(model: Model, op: Op) -> Any:
    o = _core.OpOptions()
    opts = op.options
    if "stride" in opts:
        o.stride_h, o.stride_w = (int(s) for s in opts["stride"])
    if "dilation" in opts:
        o.dilation_h, o.dilation_w = (int(d) for d in opts["dilation"])
    if "padding" in opts:
        o.padding = _PADDING_CODES[opts["padding"]]
    if "activation" in opts:
        o.activation = _ACTIVATION_CODES[opts["activation"]]
    if "depth_multiplier" in opts:
        o.depth_multiplier = int(opts["depth_multiplier"])
    if "filter" in opts:
        o.filter_h, o.filter_w = (int(f) for f in opts["filter"])
    if "axes" in opts:
        o.axes = [int(a) for a in opts["axes"]]
    if "axis" in opts:
        o.axis = int(opts["axis"])
    if "pads" in opts:
        o.pad_before = [int(a) for a, _ in opts["pads"]]
        o.pad_after = [int(b) for _, b in opts["pads"]]
    if "value" in opts:
        o.pad_value = int(opts["value"])
        o.has_pad_value = True
    if "beta" in opts:
        o.beta = float(opts["beta"])
    if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = model.tensors[op.inputs[1]]
        if np.any(w.zero_point != 0):
            raise UnsupportedOpError(
                op.type, op.name, "filter weights must be symmetric (zero point 0)"
            )
    return o
