"""TFLite front end: a .tflite flatbuffer -> dtmm IR.

The flatbuffer is parsed with the `tflite` package (code generated from
TFLite's schema); this module only maps TFLite's operators and options onto
the IR and rejects, by name, everything the runtime cannot execute exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tflite

from .errors import ModelError, UnsupportedOpError
from .ir import Model, Op, Tensor

_DTYPES = {
    tflite.TensorType.FLOAT32: np.dtype(np.float32),
    tflite.TensorType.INT32: np.dtype(np.int32),
    tflite.TensorType.INT8: np.dtype(np.int8),
    tflite.TensorType.INT64: np.dtype(np.int64),
    tflite.TensorType.UINT8: np.dtype(np.uint8),
    tflite.TensorType.INT16: np.dtype(np.int16),
}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_PADDING = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}


def from_tflite_bytes(data: bytes, source: str = "") -> Model:
    """Parse a .tflite flatbuffer into a :class:`dtmm.Model`."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(
            f"{source or 'model'}: not a TFLite flatbuffer (missing 'TFL3' identifier)"
        )
    try:
        fb = tflite.Model.GetRootAsModel(data, 0)
        return _Importer(fb, data, source).run()
    except (ModelError, UnsupportedOpError):
        raise
    except Exception as e:  # a corrupt flatbuffer surfaces as any parser error
        raise ModelError(f"{source or 'model'}: corrupt TFLite flatbuffer ({e})") from e


class _Importer:
    def __init__(self, fb: Any, data: bytes, source: str) -> None:
        self.fb = fb
        self.data = data
        self.source = source
        if fb.SubgraphsLength() != 1:
            raise ModelError(
                f"{source}: {fb.SubgraphsLength()} subgraphs; dtmm supports single-subgraph models"
            )
        self.sg = fb.Subgraphs(0)
        self.names: list[str] = []
        self.tensors: dict[str, Tensor] = {}

    # ---- tensors

    def buffer(self, index: int) -> bytes | None:
        buf = self.fb.Buffers(index)
        if buf is None:
            return None
        if buf.Offset() > 1:  # data stored after the flatbuffer (large models)
            start, size = buf.Offset(), buf.Size()
            if start + size > len(self.data):
                raise ModelError(f"{self.source}: buffer {index} lies outside the file")
            return self.data[start : start + size]
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy().tobytes()

    def read_tensors(self) -> None:
        seen: dict[str, int] = {}
        for i in range(self.sg.TensorsLength()):
            t = self.sg.Tensors(i)
            name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor_{i}"
            if name in seen:  # TFLite allows duplicate names; the IR does not
                seen[name] += 1
                name = f"{name}#{seen[name]}"
            else:
                seen[name] = 0
            dtype = _DTYPES.get(t.Type())
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            q = t.Quantization()
            scale = np.zeros(0, np.float32)
            zp = np.zeros(0, np.int64)
            axis = 0
            if q is not None and q.ScaleLength():
                scale = q.ScaleAsNumpy().astype(np.float32)
                zp = (
                    q.ZeroPointAsNumpy().astype(np.int64)
                    if q.ZeroPointLength()
                    else np.zeros(len(scale), np.int64)
                )
                axis = q.QuantizedDimension()
            raw = self.buffer(t.Buffer())
            data = None
            if raw is not None:
                if dtype is None:
                    raise ModelError(f"{self.source}: constant '{name}' has an unsupported type")
                data = np.frombuffer(raw, dtype=dtype)
                if data.size != int(np.prod(shape, dtype=np.int64)):
                    raise ModelError(
                        f"{self.source}: constant '{name}' holds {data.size} values, "
                        f"shape {list(shape)} needs {int(np.prod(shape))}"
                    )
                data = data.reshape(shape).copy()
            self.names.append(name)
            self.tensors[name] = Tensor(
                name, shape, dtype if dtype is not None else np.dtype("V1"), scale, zp, axis, data
            )

    # ---- ops

    def run(self) -> Model:
        self.read_tensors()
        ops: list[Op] = []
        for i in range(self.sg.OperatorsLength()):
            ops.append(self.convert(self.sg.Operators(i), i))
        inputs = [self.names[j] for j in self.sg.InputsAsNumpy()]
        outputs = [self.names[j] for j in self.sg.OutputsAsNumpy()]
        model = Model(self.tensors, ops, inputs, outputs, source=self.source)
        _check_tensor_types(model)
        return model

    def convert(self, op: Any, index: int) -> Op:
        code = self.fb.OperatorCodes(op.OpcodeIndex())
        builtin = max(_builtin_code_field(code), code.DeprecatedBuiltinCode())
        type_name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if builtin == tflite.BuiltinOperator.CUSTOM:
            type_name = "CUSTOM:" + (code.CustomCode() or b"").decode()
        ins = [self.names[j] if j >= 0 else None for j in op.InputsAsNumpy()]
        outs = [self.names[j] for j in op.OutputsAsNumpy()]
        node = outs[0] if outs else f"op_{index}"
        handler = _HANDLERS.get(type_name)
        if handler is None:
            raise UnsupportedOpError(type_name, node, "dtmm has no kernel for this operator")
        ir_type, options, ins = handler(self, op, ins, outs, node)
        return Op(ir_type, ins, outs, options, name=node)

    def options(self, op: Any, cls: type) -> Any:
        table = op.BuiltinOptions()
        opts = cls()
        if table is not None:
            opts.Init(table.Bytes, table.Pos)
        return opts

    def constant(self, name: str | None, node: str, op: str, what: str) -> np.ndarray:
        if name is None or self.tensors[name].data is None:
            raise UnsupportedOpError(op, node, f"{what} must be a constant tensor")
        return self.tensors[name].data


def _builtin_code_field(code: Any) -> int:
    """The raw int32 `builtin_code` field of an OperatorCode.

    The `tflite` package's BuiltinCode() returns deprecated_builtin_code for
    codes below 127, which reads 0 (ADD) from writers that only fill the new
    field; TFLite itself takes max(deprecated_builtin_code, builtin_code).
    """
    import flatbuffers

    offset = code._tab.Offset(10)  # vtable slot of field 3, builtin_code
    if offset == 0:
        return 0
    return int(code._tab.Get(flatbuffers.number_types.Int32Flags, offset + code._tab.Pos))


def _activation(opts: Any, op: str, node: str) -> str:
    act = opts.FusedActivationFunction() if opts is not None else 0
    if act not in _ACTIVATIONS:
        raise UnsupportedOpError(op, node, f"fused activation {act} is not supported")
    return _ACTIVATIONS[act]


def _conv(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    o = imp.options(op, tflite.Conv2DOptions)
    return (
        "CONV_2D",
        {
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "padding": _PADDING[o.Padding()],
            "activation": _activation(o, "CONV_2D", node),
        },
        ins,
    )


def _depthwise(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    o = imp.options(op, tflite.DepthwiseConv2DOptions)
    in_ch = imp.tensors[ins[0]].shape[-1]
    out_ch = imp.tensors[ins[1]].shape[-1]
    if in_ch == 0 or out_ch % in_ch:
        raise UnsupportedOpError(
            "DEPTHWISE_CONV_2D", node, f"{out_ch} output channels for {in_ch} input channels"
        )
    return (
        "DEPTHWISE_CONV_2D",
        {
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "padding": _PADDING[o.Padding()],
            "depth_multiplier": out_ch // in_ch,
            "activation": _activation(o, "DEPTHWISE_CONV_2D", node),
        },
        ins,
    )


def _fully_connected(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    o = imp.options(op, tflite.FullyConnectedOptions)
    if o.WeightsFormat() != 0:
        raise UnsupportedOpError("FULLY_CONNECTED", node, "shuffled weights format")
    ins = ins + [None] * (3 - len(ins))
    return "FULLY_CONNECTED", {"activation": _activation(o, "FULLY_CONNECTED", node)}, ins


def _binary(kind: str, cls: type) -> Callable:
    def handler(imp: _Importer, op: Any, ins: list, outs: list, node: str):
        return kind, {"activation": _activation(imp.options(op, cls), kind, node)}, ins

    return handler


def _pool(kind: str) -> Callable:
    def handler(imp: _Importer, op: Any, ins: list, outs: list, node: str):
        o = imp.options(op, tflite.Pool2DOptions)
        return (
            kind,
            {
                "stride": (o.StrideH(), o.StrideW()),
                "filter": (o.FilterHeight(), o.FilterWidth()),
                "padding": _PADDING[o.Padding()],
                "activation": _activation(o, kind, node),
            },
            ins,
        )

    return handler


def _mean(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    axes = imp.constant(ins[1], node, "MEAN", "the axis input")
    rank = len(imp.tensors[ins[0]].shape)
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    return "MEAN", {"axes": axes}, ins[:1]


def _pad(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    pads = imp.constant(ins[1], node, "PAD", "the paddings input").astype(np.int64)
    options: dict[str, Any] = {"pads": [(int(a), int(b)) for a, b in pads.reshape(-1, 2)]}
    if len(ins) > 2 and ins[2] is not None:
        value = imp.constant(ins[2], node, "PADV2", "the constant value")
        options["value"] = int(np.asarray(value).reshape(-1)[0])
    return "PAD", options, ins[:1]


def _concat(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    o = imp.options(op, tflite.ConcatenationOptions)
    if _activation(o, "CONCATENATION", node) != "NONE":
        raise UnsupportedOpError("CONCATENATION", node, "fused activation on concatenation")
    rank = len(imp.tensors[outs[0]].shape)
    return "CONCATENATION", {"axis": int(o.Axis()) % rank}, ins


def _reshape(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    return "RESHAPE", {}, ins[:1]


def _softmax(imp: _Importer, op: Any, ins: list, outs: list, node: str):
    o = imp.options(op, tflite.SoftmaxOptions)
    return "SOFTMAX", {"beta": float(o.Beta())}, ins


def _unary(kind: str) -> Callable:
    def handler(imp: _Importer, op: Any, ins: list, outs: list, node: str):
        return kind, {}, ins

    return handler


_HANDLERS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("ADD", tflite.AddOptions),
    "MUL": _binary("MUL", tflite.MulOptions),
    "AVERAGE_POOL_2D": _pool("AVERAGE_POOL_2D"),
    "MAX_POOL_2D": _pool("MAX_POOL_2D"),
    "MEAN": _mean,
    "PAD": _pad,
    "PADV2": _pad,
    "CONCATENATION": _concat,
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "EXPAND_DIMS": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _unary("LOGISTIC"),
    "QUANTIZE": _unary("QUANTIZE"),
    "DEQUANTIZE": _unary("DEQUANTIZE"),
}


def _check_tensor_types(model: Model) -> None:
    """Every op computes in int8 (float32 only at QUANTIZE/DEQUANTIZE edges)."""
    for op in model.ops:
        for role, names in (("input", op.inputs), ("output", op.outputs)):
            for name in names:
                if name is None:
                    continue
                t = model.tensors[name]
                allowed = {np.dtype(np.int8)}
                if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                    allowed.add(np.dtype(np.int32))  # bias
                if (op.type == "QUANTIZE" and role == "input") or (
                    op.type == "DEQUANTIZE" and role == "output"
                ):
                    allowed.add(np.dtype(np.float32))
                if op.type == "RESHAPE":
                    allowed.update({np.dtype(np.float32), np.dtype(np.int32)})
                if t.dtype not in allowed:
                    raise UnsupportedOpError(
                        op.type,
                        op.name,
                        f"{role} '{name}' has dtype {t.dtype}; dtmm runs int8 models "
                        "(float32 only through QUANTIZE/DEQUANTIZE)",
                    )
                if t.dtype == np.int8 and len(t.scale) == 0:
                    raise UnsupportedOpError(
                        op.type, op.name, f"{role} '{name}' is int8 without quantization"
                    )
