"""dtmm.compile: lower a dtmm Model to a model blob (bytes).

The C++ builder (through the private ``_core`` module) owns the byte layout
and computes every op's fixed-point parameters; this module decides what to
emit: constants, activations at their planned arena offsets, and the ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core
from .errors import ModelError, UnsupportedOpError
from .graph_passes import as_compiled
from .ir import Model, Op, Tensor
from .memory import plan_compiled
from .sparse_formats import block_encode, csr_encode, fwcs_encode
from .sparsity_choice import choose_conv, choose_fc, op_mode

_ABSENT = 0xFFFFFFFF
_DTYPE_CODES = {
    np.dtype(np.int8): _core.INT8,
    np.dtype(np.int32): _core.INT32,
    np.dtype(np.float32): _core.FLOAT32,
    np.dtype(np.uint8): _core.UINT8,
    np.dtype(np.uint16): _core.UINT16,
}
_ACTIVATION_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
ROUNDINGS = ("tflite", "onnx")  # Model.rounding
_PADDING_CODES = {"VALID": _core.PAD_VALID, "SAME": _core.PAD_SAME}


def compile(  # noqa: A001 - the public name
    model: Model,
    *,
    sparse: str | Mapping[str, str] = "auto",
    fc_block: int = 16,
    debug_info: bool = False,
) -> bytes:
    """Compile ``model`` into a dtmm model blob for :class:`dtmm.Runtime` or firmware.

    ``sparse`` chooses the kernel of each conv and fully connected layer:
    "auto" (FWCS / block-sparse where the cost model predicts fewer bytes and
    no more work), "always" (sparse wherever the op allows it), "never"
    (dense everywhere) or "csr" (the per-weight CSR baseline, for
    comparisons); or a dict from op name to one of those modes, per layer
    (unlisted layers use "auto"). Under "auto", a layer whose options carry
    ``storage="dense"`` or ``"sparse"`` (set by :func:`dtmm.schedule`) keeps it.
    ``fc_block`` is the fully connected block size. Every choice gives
    bit-identical outputs. ``debug_info`` also stores what only tools read:
    the per-channel weight scales (the runtime uses precomputed
    requantization tables) and the names of constant tensors (ops and
    activations are always named). Off by default, it costs no flash.
    """
    if fc_block < 1:
        raise ValueError(f"fc_block must be >= 1, got {fc_block}")
    if model.rounding not in ROUNDINGS:
        raise ValueError(
            f"model.rounding must be one of {', '.join(ROUNDINGS)}, got {model.rounding!r}"
        )
    model = as_compiled(model, sparse)  # checks sparse against the model's ops
    plan = plan_compiled(model)
    builder = _core.BlobBuilder(debug_info, model.rounding == "onnx")
    index: dict[str, int] = {}

    def tensor_index(name: str) -> int:
        if name not in index:
            index[name] = _add_tensor(
                builder, model.tensors[name], plan.offsets.get(name), debug_info
            )
        return index[name]

    for name in model.inputs:
        tensor_index(name)
    for op in model.ops:
        mode = op_mode(sparse, op.name, op.options)
        kind, inputs, extra = lower_weights(model, op, mode, fc_block)
        ins = []
        for t in inputs:
            if t is None:
                ins.append(_ABSENT)
            elif isinstance(t, Tensor):  # a sparse encoding made for this op
                ins.append(_add_tensor(builder, t, None, debug_info))
            else:
                ins.append(tensor_index(t))
        outs = [tensor_index(t) for t in op.outputs]
        options = _op_options(model, op)
        for key, value in extra.items():
            setattr(options, key, value)
        try:
            builder.add_op(_core.OP_TYPES[kind], ins, outs, options, blob_name(op.name))
        except ValueError as e:
            raise ModelError(f"{op.type} '{op.name}': {e}") from e
    builder.set_io(
        [tensor_index(t) for t in model.inputs], [tensor_index(t) for t in model.outputs]
    )
    return builder.finish(plan.arena_size)


MAX_NAME = 48


def blob_name(name: str) -> str:
    """The name stored in the blob: TFLite joins the names of fused ops with ';'
    (hundreds of bytes per tensor); the first part identifies it, in less flash."""
    return name.split(";")[0][:MAX_NAME]


def lower_weights(
    model: Model, op: Op, sparse: str, fc_block: int
) -> tuple[str, list[Any], dict[str, int]]:
    """The runtime op for ``op``: its type, inputs (names, or Tensors holding a
    sparse encoding of the weights) and extra builder options."""
    if op.type == "CONV_2D":
        x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
        bias = op.inputs[2] if len(op.inputs) > 2 else None
        if w.data is None or w.shape[3] != x.shape[3]:  # grouped convs stay dense
            return op.type, list(op.inputs), {}
        choice = choose_conv(w.data, sparse)
        extra = {"kernel_h": int(w.shape[1]), "kernel_w": int(w.shape[2])}
        if choice.kind == "fwcs":
            enc = fwcs_encode(w.data)
            # The bias is folded into the op's folded bias, not stored twice.
            if bias is not None:
                extra["bias"] = [int(b) for b in model.tensors[bias].data]
            return (
                "CONV_2D_FWCS",
                [op.inputs[0], _values(w, enc.values), _raw(w, "mask", enc.mask)],
                extra,
            )
        if choice.kind == "csr":
            return "CONV_2D_CSR", _csr_inputs(op, w, w.data.reshape(w.shape[0], -1), bias), extra
        return op.type, list(op.inputs), {}
    if op.type == "FULLY_CONNECTED":
        w = model.tensors[op.inputs[1]]
        bias = op.inputs[2] if len(op.inputs) > 2 else None
        if w.data is None or np.any(w.zero_point != 0):
            return op.type, list(op.inputs), {}
        kind = choose_fc(w.data, sparse, fc_block)
        extra = {"depth": int(w.shape[1])}
        if kind == "block":
            values, mask = block_encode(w.data, fc_block)
            return (
                "FULLY_CONNECTED_BLOCK",
                [op.inputs[0], _values(w, values), _raw(w, "mask", mask), bias],
                extra,
            )
        if kind == "csr":
            return "FULLY_CONNECTED_CSR", _csr_inputs(op, w, w.data, bias), extra
    return op.type, list(op.inputs), {}


def _csr_inputs(op: Op, w: Tensor, rows: np.ndarray, bias: str | None) -> list[Any]:
    """Inputs of a CSR op: input, values, columns, row pointers, bias."""
    values, cols, ptr = csr_encode(rows)
    return [
        op.inputs[0],
        _values(w, values),
        _raw(w, "columns", cols),
        _raw(w, "row_ptr", ptr),
        bias,
    ]


def _values(w: Tensor, values: np.ndarray) -> Tensor:
    """Sparse weight values, carrying the dense weights' quantization."""
    return Tensor(
        f"{w.name}/values", values.shape, np.dtype(np.int8), w.scale, w.zero_point, 0, values
    )


def _raw(w: Tensor, what: str, data: np.ndarray) -> Tensor:
    return Tensor(f"{w.name}/{what}", data.shape, data.dtype, data=data)


def _add_tensor(builder: Any, t: Tensor, offset: int | None, debug_info: bool) -> int:
    code = _DTYPE_CODES.get(np.dtype(t.dtype))
    if code is None:
        raise ModelError(f"tensor '{t.name}' has dtype {t.dtype}, which the runtime cannot hold")
    scale = float(t.scale[0]) if len(t.scale) else 0.0
    zero_point = int(t.zero_point[0]) if len(t.zero_point) else 0
    shape = [int(d) for d in t.shape]
    if t.is_constant:
        per_channel = len(t.scale) > 1
        return builder.add_constant(
            blob_name(t.name) if debug_info else "",
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
    return builder.add_activation(blob_name(t.name), code, shape, scale, zero_point, offset)


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
