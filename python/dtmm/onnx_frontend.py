"""ONNX front end: a QDQ-quantized ONNX graph -> dtmm IR (NHWC, int8).

A QDQ graph computes in float between DequantizeLinear and QuantizeLinear
nodes: ``Q(op(DQ(x), DQ(w), DQ(b)))``. Each such island (with an optional
Relu/Clip before the Q) is one int8 op with TFLite semantics: weights and
activations keep the graph's int8 values and scales, the bias is re-expressed
in int32 at ``input_scale * weight_scale`` as TFLite requires. The model gets
``rounding="onnx"``: its conv and fully connected layers round the real
value once, as the Q does (see :class:`dtmm.Model`), not twice as TFLite.

Layout: activations are stored NHWC. Every ONNX value remembers how its axes
map onto the NHWC tensor that holds it (``perm``), so NCHW graphs and
tf2onnx's NHWC graphs (which wrap convs in Transposes) both become plain NHWC
models. A rank-4 graph input that is not immediately transposed is taken as
NCHW and becomes an NHWC input of the dtmm model.

Float graphs are quantized first (``calibration=`` in :func:`dtmm.load`) with
onnxruntime's static QDQ quantizer: int8 activations, symmetric per-channel
int8 weights, which is TFLite's int8 scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelError, UnsupportedOpError
from .ir import Model, Op, Tensor

NCHW = (0, 3, 1, 2)  # ONNX axis i lives on NHWC axis NCHW[i]

_SUPPORTED = (
    "Conv Gemm MatMul Relu Clip Add Mul AveragePool GlobalAveragePool MaxPool Flatten "
    "Reshape Softmax Concat Pad Transpose Squeeze Unsqueeze Identity QuantizeLinear "
    "DequantizeLinear"
).split()


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "loading .onnx models needs the 'onnx' package: pip install 'dtmm[onnx]'"
        ) from e
    return onnx


@dataclass
class _Value:
    """What an ONNX value is, as far as the importer is concerned.

    kind: "int8" (an int8 IR tensor), "real" (the same tensor dequantized),
    "const" (an initializer, with quantization when it went through a DQ),
    "float" (a float IR tensor: a graph input or output edge), or "pending"
    (a float op result waiting for its QuantizeLinear).
    """

    kind: str
    tensor: str = ""  # IR tensor name (int8/real/float)
    perm: tuple[int, ...] = ()
    data: np.ndarray | None = None  # const
    scale: np.ndarray | None = None  # const after DQ
    zero_point: np.ndarray | None = None
    axis: int = 0
    op: Op | None = None  # pending
    flatten_order: np.ndarray | None = None  # NCHW->NHWC element order of a flatten


def from_onnx(model_or_path: Any, source: str = "") -> Model:
    """Convert a QDQ ONNX model (a path, bytes or ``onnx.ModelProto``) to dtmm IR."""
    onnx = _import_onnx()
    if isinstance(model_or_path, (bytes, bytearray)):
        try:
            proto = onnx.load_from_string(bytes(model_or_path))
        except Exception as e:
            raise ModelError(f"{source or 'model'}: not a valid ONNX protobuf ({e})") from e
    elif isinstance(model_or_path, onnx.ModelProto):
        proto = model_or_path
    else:
        source = source or str(model_or_path)
        try:
            proto = onnx.load(str(model_or_path))
        except Exception as e:
            raise ModelError(f"{source}: not a valid ONNX file ({e})") from e
    return _Importer(proto, source or "<onnx>").run()


class _Importer:
    def __init__(self, proto: Any, source: str) -> None:
        onnx = _import_onnx()
        self.onnx = onnx
        self.source = source
        domains = {o.domain: o.version for o in proto.opset_import}
        if domains.get("", domains.get("ai.onnx", 0)) < 10:
            raise ModelError(f"{source}: ONNX opset {domains} is too old (QDQ needs opset >= 10)")
        try:
            proto = onnx.shape_inference.infer_shapes(proto)
        except Exception as e:
            raise ModelError(f"{source}: ONNX shape inference failed ({e})") from e
        self.g = proto.graph
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.values: dict[str, _Value] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.g.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    # ---- helpers

    def fail(self, node: Any, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(node.op_type, node.name or node.output[0], why)

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise ModelError(f"{self.source}: no shape known for ONNX value '{name}'")
        return self.shapes[name]

    def record_shapes(self) -> None:
        for vi in list(self.g.value_info) + list(self.g.input) + list(self.g.output):
            t = vi.type.tensor_type
            if not t.HasField("shape"):
                continue
            dims = []
            for i, d in enumerate(t.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(int(d.dim_value))
                elif i == 0:
                    dims.append(1)  # dynamic batch: dtmm runs one sample per invoke
                else:
                    dims = None
                    break
            if dims is not None:
                self.shapes[vi.name] = tuple(dims)

    def new_tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        scale: np.ndarray | None = None,
        zp: np.ndarray | None = None,
        axis: int = 0,
        data: np.ndarray | None = None,
    ) -> str:
        base, k = name, 0
        while name in self.tensors:
            k += 1
            name = f"{base}#{k}"
        self.tensors[name] = Tensor(
            name,
            tuple(int(d) for d in shape),
            np.dtype(dtype),
            np.zeros(0, np.float32) if scale is None else np.asarray(scale, np.float32).ravel(),
            np.zeros(0, np.int64) if zp is None else np.asarray(zp, np.int64).ravel(),
            axis,
            data,
        )
        return name

    def value(self, node: Any, index: int) -> _Value:
        if index >= len(node.input) or not node.input[index]:
            raise self.fail(node, f"input {index} is missing")
        name = node.input[index]
        if name not in self.values:
            raise ModelError(f"{self.source}: node '{node.name}' reads undefined value '{name}'")
        return self.values[name]

    def real(self, node: Any, index: int) -> _Value:
        v = self.value(node, index)
        if v.kind != "real":
            raise self.fail(
                node,
                f"input '{node.input[index]}' must come from a DequantizeLinear of an int8 "
                f"activation (found {v.kind}); dtmm imports fully quantized QDQ graphs",
            )
        return v

    def const(self, node: Any, index: int, quantized: bool = False) -> _Value:
        v = self.value(node, index)
        if v.kind != "const" or (quantized and v.scale is None):
            need = "an int8 initializer behind a DequantizeLinear" if quantized else "a constant"
            raise self.fail(node, f"input '{node.input[index]}' must be {need}")
        return v

    @staticmethod
    def ir_shape(onnx_shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
        out = [0] * len(perm)
        for i, p in enumerate(perm):
            out[p] = onnx_shape[i]
        return tuple(out)

    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    # ---- driver

    def run(self) -> Model:
        from onnx import numpy_helper

        self.record_shapes()
        for init in self.g.initializer:
            self.values[init.name] = _Value("const", data=numpy_helper.to_array(init))
        inputs: list[str] = []
        for vi in self.g.input:
            if vi.name in self.values:
                continue  # an initializer listed as an input (old exporters)
            inputs.append(self.graph_input(vi))
        for node in self.g.node:
            if node.op_type not in _SUPPORTED and node.op_type != "Constant":
                raise self.fail(
                    node, f"dtmm's ONNX importer supports {', '.join(_SUPPORTED)}; not this op"
                )
            if node.domain not in ("", "ai.onnx"):
                raise self.fail(node, f"operator domain '{node.domain}' is not supported")
            getattr(self, "op_" + node.op_type)(node)
        outputs = [self.graph_output(vi.name) for vi in self.g.output]
        for name in inputs:
            t = self.tensors[name]
            if t.dtype == np.int8 and len(t.scale) == 0:
                raise ModelError(
                    f"{self.source}: int8 input '{name}' is never dequantized, so its scale "
                    "is unknown"
                )
        # ONNX's QuantizeLinear rounds the real value once: so does the model.
        return Model(self.tensors, self.ops, inputs, outputs, source=self.source, rounding="onnx")

    def graph_input(self, vi: Any) -> str:
        elem = vi.type.tensor_type.elem_type
        shape = self.shape_of(vi.name)
        dtype = {1: np.float32, 3: np.int8}.get(elem)
        if dtype is None:
            raise ModelError(
                f"{self.source}: graph input '{vi.name}' has ONNX element type {elem}; "
                "dtmm takes float32 or int8 inputs"
            )
        perm = tuple(range(len(shape)))
        if len(shape) == 4:
            users = self.consumers.get(vi.name, [])
            nhwc = users and all(
                u.op_type == "Transpose" and tuple(self.attrs(u).get("perm", ())) == NCHW
                for u in users
            )
            perm = tuple(range(4)) if nhwc else NCHW
        name = self.new_tensor(vi.name, self.ir_shape(shape, perm), dtype)
        self.values[vi.name] = _Value("int8" if dtype == np.int8 else "float", name, perm)
        return name

    def graph_output(self, name: str) -> str:
        v = self.values.get(name)
        if v is None or v.kind not in ("int8", "float"):
            raise ModelError(
                f"{self.source}: graph output '{name}' is not a quantized tensor "
                f"({'undefined' if v is None else v.kind}); end the graph with QuantizeLinear "
                "or QuantizeLinear -> DequantizeLinear"
            )
        return v.tensor

    def emit(self, type_: str, inputs: list[str | None], outputs: list[str], **options: Any) -> Op:
        op = Op(type_, inputs, outputs, options, name=outputs[0])
        self.ops.append(op)
        return op

    def pending(self, node: Any, type_: str, inputs: list[str | None], perm, **options) -> None:
        op = Op(type_, inputs, [], options, name=node.name or node.output[0])
        self.values[node.output[0]] = _Value("pending", perm=tuple(perm), op=op)

    # ---- quantization edges

    def op_Constant(self, node: Any) -> None:
        from onnx import numpy_helper

        a = {x.name: x for x in node.attribute}
        if "value" not in a:
            raise self.fail(node, "only tensor-valued Constant nodes are supported")
        self.values[node.output[0]] = _Value("const", data=numpy_helper.to_array(a["value"].t))

    def quant_params(self, node: Any) -> tuple[np.ndarray, np.ndarray, int]:
        scale = np.asarray(self.const(node, 1).data, np.float32)
        if len(node.input) > 2 and node.input[2]:
            zp_v = self.const(node, 2).data
            zp = np.asarray(zp_v)
            if zp.dtype not in (np.int8, np.int32):
                raise self.fail(node, f"zero point of dtype {zp.dtype}; dtmm needs int8")
        else:
            zp = np.zeros(scale.shape, np.int64)  # ONNX's default is uint8 zero; see below
            if node.op_type == "QuantizeLinear":
                raise self.fail(node, "a QuantizeLinear without a zero point produces uint8")
        axis = int(self.attrs(node).get("axis", 1))
        return scale.reshape(-1), zp.astype(np.int64).reshape(-1), axis

    def op_DequantizeLinear(self, node: Any) -> None:
        v = self.value(node, 0)
        scale, zp, axis = self.quant_params(node)
        out = node.output[0]
        if v.kind == "const":
            rank = v.data.ndim
            self.values[out] = _Value(
                "const",
                data=v.data,
                scale=scale.ravel(),
                zero_point=zp.ravel(),
                axis=axis % rank if rank else 0,
            )
            return
        if v.kind != "int8":
            raise self.fail(node, f"input '{node.input[0]}' is {v.kind}, not an int8 tensor")
        t = self.tensors[v.tensor]
        if scale.size != 1:
            raise self.fail(node, "per-channel activation quantization is not supported")
        if len(t.scale) == 0:  # an int8 graph input learns its quantization here
            t.scale, t.zero_point = scale.ravel(), zp.ravel()
        elif not (np.allclose(t.scale, scale.ravel(), rtol=1e-6) and t.zero_point[0] == zp[0]):
            raise self.fail(
                node,
                f"dequantizes '{node.input[0]}' with scale {float(scale)} / zero point "
                f"{int(zp.ravel()[0])}, but it was quantized with {float(t.scale[0])} / "
                f"{int(t.zero_point[0])}",
            )
        if out in {o.name for o in self.g.output}:
            shape = self.tensors[v.tensor].shape
            f = self.new_tensor(out, shape, np.float32)
            self.emit("DEQUANTIZE", [v.tensor], [f])
            self.values[out] = _Value("float", f, v.perm)
            return
        self.values[out] = _Value("real", v.tensor, v.perm, flatten_order=v.flatten_order)

    def op_QuantizeLinear(self, node: Any) -> None:
        v = self.value(node, 0)
        scale, zp, _ = self.quant_params(node)
        if scale.size != 1:
            raise self.fail(node, "per-channel activation quantization is not supported")
        if zp.ravel()[0] < -128 or zp.ravel()[0] > 127:
            raise self.fail(node, "zero point outside int8")
        out = node.output[0]
        if v.kind == "real" and self.same_quantization(v.tensor, scale, zp):
            # DQ -> layout ops -> Q with the same parameters: nothing to compute
            self.values[out] = _Value("int8", v.tensor, v.perm, flatten_order=v.flatten_order)
            return
        shape = self.ir_shape(self.shape_of(out), v.perm)
        y = self.new_tensor(out, shape, np.int8, scale, zp)
        if v.kind in ("float", "real"):  # float -> int8, or int8 -> int8 requantization
            self.emit("QUANTIZE", [v.tensor], [y])
        elif v.kind == "pending":
            op = v.op
            if op.type == "CONCATENATION":  # TFLite concatenates equally quantized inputs
                op.inputs = [self.requantized(x, scale, zp) for x in op.inputs]
            op.outputs = [y]
            op.name = y
            self.ops.append(op)
        else:
            raise self.fail(node, f"input '{node.input[0]}' is {v.kind}, not a float tensor")
        self.values[out] = _Value("int8", y, v.perm, flatten_order=v.flatten_order)

    def same_quantization(self, name: str, scale: np.ndarray, zp: np.ndarray) -> bool:
        t = self.tensors[name]
        return bool(np.allclose(t.scale, scale, rtol=1e-6) and t.zero_point[0] == zp[0])

    def requantized(self, name: str, scale: np.ndarray, zp: np.ndarray) -> str:
        if self.same_quantization(name, scale, zp):
            return name
        y = self.new_tensor(name + "/requantized", self.tensors[name].shape, np.int8, scale, zp)
        self.emit("QUANTIZE", [name], [y])
        return y

    # ---- layout-only ops

    def op_Transpose(self, node: Any) -> None:
        v = self.value(node, 0)
        p = tuple(int(a) for a in self.attrs(node)["perm"])
        if v.kind == "const":
            self.values[node.output[0]] = _Value("const", data=np.transpose(v.data, p))
            return
        if v.kind not in ("int8", "real", "float"):
            raise self.fail(node, f"cannot transpose a {v.kind} value")
        self.values[node.output[0]] = _Value(v.kind, v.tensor, tuple(v.perm[i] for i in p))

    def op_Identity(self, node: Any) -> None:
        self.values[node.output[0]] = self.value(node, 0)

    def op_Reshape(self, node: Any) -> None:
        v = self.value(node, 0)
        if v.kind == "const":
            self.values[node.output[0]] = _Value(
                "const", data=v.data.reshape(self.shape_of(node.output[0]))
            )
            return
        if v.kind not in ("int8", "real"):
            raise self.fail(node, f"cannot reshape a {v.kind} value")
        src = self.tensors[v.tensor]
        out_shape = self.shape_of(node.output[0])
        order = None
        if v.perm != tuple(range(len(v.perm))):
            # Only dims of size 1 move: data order unchanged. Otherwise the flatten of
            # an NCHW value reorders elements; consumers that are FC layers absorb it.
            moved = [src.shape[p] for i, p in enumerate(v.perm) if p != i]
            if any(d > 1 for d in moved) and not (len(v.perm) == 4 and len(out_shape) == 2):
                raise self.fail(node, "reshape of a transposed tensor that moves data")
            if any(d > 1 for d in moved):
                n, h, w, c = src.shape
                order = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
                order = np.argsort(order)  # NHWC position of each NCHW-flattened element
        y = self.new_tensor(
            node.output[0], out_shape, np.int8, src.scale, src.zero_point, src.quant_axis
        )
        self.emit("RESHAPE", [v.tensor], [y])
        self.values[node.output[0]] = _Value(
            v.kind, y, tuple(range(len(out_shape))), flatten_order=order
        )

    op_Flatten = op_Reshape
    op_Squeeze = op_Reshape
    op_Unsqueeze = op_Reshape

    # ---- compute ops

    def bias(self, node: Any, index: int | None, x_scale: float, w_scale: np.ndarray, n: int):
        """The bias as int32 at x_scale * w_scale (TFLite's convention)."""
        if index is None or index >= len(node.input) or not node.input[index]:
            return None
        b = self.const(node, index)
        real = np.asarray(b.data, np.float64).reshape(-1)
        if b.scale is not None:
            real = (real - b.zero_point.astype(np.float64)) * b.scale.astype(np.float64)
        if real.size == 1:
            real = np.full(n, real[0])
        if real.size != n:
            raise self.fail(node, f"bias has {real.size} values for {n} output channels")
        q = np.round(real / (x_scale * np.broadcast_to(w_scale.astype(np.float64), (n,))))
        if np.any(np.abs(q) > 2**31 - 1):
            raise self.fail(node, "bias does not fit int32 at input_scale * weight_scale")
        name = self.new_tensor(
            node.output[0] + "/bias",
            (n,),
            np.int32,
            x_scale * np.broadcast_to(w_scale, (n,)),
            np.zeros(n, np.int64),
            0,
            q.astype(np.int32),
        )
        return name

    def weight(self, node: Any, index: int, data: np.ndarray, v: _Value, axis: int) -> str:
        if v.data.dtype != np.int8:
            raise self.fail(node, f"weights of dtype {v.data.dtype}; dtmm needs int8")
        if np.any(v.zero_point != 0):
            raise self.fail(node, "weights must be symmetric (zero point 0)")
        per_channel = v.scale.size > 1
        return self.new_tensor(
            node.input[index],
            data.shape,
            np.int8,
            v.scale,
            np.zeros(v.scale.size, np.int64),
            axis if per_channel else 0,
            np.ascontiguousarray(data),
        )

    def padding(self, node: Any, x: Tensor, kernel, strides, dilations) -> tuple[str, list]:
        a = self.attrs(node)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "VALID"):
            return ("SAME" if auto == "SAME_UPPER" else "VALID"), []
        if auto != "NOTSET":
            raise self.fail(node, f"auto_pad={auto} is not supported (TFLite pads SAME_UPPER)")
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if not any(pads):
            return "VALID", []
        same = []
        for size, k, s, d in zip(x.shape[1:3], kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            same.append((total // 2, total - total // 2))
        if pads == [same[0][0], same[1][0], same[0][1], same[1][1]]:
            return "SAME", []
        return "VALID", [(0, 0), (pads[0], pads[2]), (pads[1], pads[3]), (0, 0)]

    def explicit_pad(self, node: Any, x_name: str, pads: list) -> str:
        x = self.tensors[x_name]
        shape = tuple(d + a + b for d, (a, b) in zip(x.shape, pads))
        y = self.new_tensor(x_name + "/pad", shape, np.int8, x.scale, x.zero_point)
        self.emit("PAD", [x_name], [y], pads=pads)
        return y

    def op_Conv(self, node: Any) -> None:
        x = self.real(node, 0)
        if x.perm != NCHW:
            raise self.fail(node, "input layout is not NCHW")
        w = self.const(node, 1, quantized=True)
        a = self.attrs(node)
        if w.data.ndim != 4:
            raise self.fail(node, f"{w.data.ndim - 2}-D convolution; dtmm supports 2-D")
        group = int(a.get("group", 1))
        kernel = tuple(w.data.shape[2:])
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        xt = self.tensors[x.tensor]
        c_in, c_out = xt.shape[3], w.data.shape[0]
        x_name = x.tensor
        padding, pads = self.padding(node, xt, kernel, strides, dil)
        if pads:
            x_name = self.explicit_pad(node, x_name, pads)
        if w.scale.size > 1 and w.axis != 0:
            raise self.fail(node, f"weights quantized along axis {w.axis}; expected axis 0")
        b = self.bias(node, 2, float(xt.scale[0]), w.scale, c_out)
        common = dict(stride=strides, dilation=dil, padding=padding, activation="NONE")
        if group == 1:
            wn = self.weight(node, 1, w.data.transpose(0, 2, 3, 1), w, 0)
            self.pending(node, "CONV_2D", [x_name, wn, b], NCHW, **common)
        elif group == c_in and w.data.shape[1] == 1 and c_out % c_in == 0:
            wn = self.weight(node, 1, w.data.transpose(1, 2, 3, 0), w, 3)
            self.pending(
                node,
                "DEPTHWISE_CONV_2D",
                [x_name, wn, b],
                NCHW,
                depth_multiplier=c_out // c_in,
                **common,
            )
        else:
            raise self.fail(node, f"grouped convolution (group={group}, C_in={c_in})")

    def fully_connected(self, node: Any, x: _Value, w: _Value, w_oi: np.ndarray, bias_index):
        if x.perm != tuple(range(len(x.perm))) or len(self.tensors[x.tensor].shape) != 2:
            raise self.fail(node, "the input of a fully connected layer must be 2-D [batch, in]")
        if x.flatten_order is not None:
            w_oi = w_oi[:, x.flatten_order]  # columns follow the NHWC flatten order
        n = w_oi.shape[0]
        wn = self.weight(node, 1, w_oi, w, 0)
        b = self.bias(node, bias_index, float(self.tensors[x.tensor].scale[0]), w.scale, n)
        self.pending(node, "FULLY_CONNECTED", [x.tensor, wn, b], (0, 1), activation="NONE")

    def op_Gemm(self, node: Any) -> None:
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.fail(node, "only Gemm with transA=0, alpha=1, beta=1 is supported")
        x = self.real(node, 0)
        w = self.const(node, 1, quantized=True)
        trans_b = bool(a.get("transB", 0))
        if w.scale.size > 1 and w.axis != (0 if trans_b else 1):
            raise self.fail(node, "weights must be quantized per output unit")
        w_oi = w.data if trans_b else w.data.T
        self.fully_connected(node, x, w, w_oi, 2)

    def op_MatMul(self, node: Any) -> None:
        x = self.real(node, 0)
        w = self.const(node, 1, quantized=True)
        if w.data.ndim != 2:
            raise self.fail(node, "MatMul with a non-2-D constant operand")
        if w.scale.size > 1 and w.axis != 1:
            raise self.fail(node, "weights must be quantized per output unit")
        self.fully_connected(node, x, w, w.data.T, None)

    def op_Add(self, node: Any) -> None:
        a = self.value(node, 0)
        b = self.value(node, 1)
        if a.kind == "pending" and a.op.type == "FULLY_CONNECTED" and b.kind == "const":
            if a.op.inputs[2] is not None:
                raise self.fail(node, "a second bias on a fully connected layer")
            x = self.tensors[a.op.inputs[0]]
            w = self.tensors[a.op.inputs[1]]
            a.op.inputs[2] = self.bias(node, 1, float(x.scale[0]), w.scale, w.shape[0])
            self.values[node.output[0]] = a
            return
        self.binary(node, "ADD")

    def op_Mul(self, node: Any) -> None:
        self.binary(node, "MUL")

    def binary(self, node: Any, kind: str) -> None:
        a, b = self.real(node, 0), self.real(node, 1)
        ranks = (len(a.perm), len(b.perm))
        if a.perm != b.perm and min(ranks) == max(ranks):
            raise self.fail(node, "operands in different layouts")
        self.pending(
            node, kind, [a.tensor, b.tensor], max(a.perm, b.perm, key=len), activation="NONE"
        )

    def activation(self, node: Any, kind: str) -> None:
        v = self.value(node, 0)
        if v.kind != "pending" or v.op.options.get("activation") != "NONE":
            raise self.fail(node, "activation that does not follow a conv, FC, ADD or MUL")
        v.op.options["activation"] = kind
        self.values[node.output[0]] = v

    def op_Relu(self, node: Any) -> None:
        self.activation(node, "RELU")

    def op_Clip(self, node: Any) -> None:
        a = self.attrs(node)
        lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(np.asarray(self.const(node, 1).data))
        if len(node.input) > 2 and node.input[2]:
            hi = float(np.asarray(self.const(node, 2).data))
        kinds = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, math.inf): "RELU"}
        if (lo, hi) not in kinds:
            raise self.fail(node, f"Clip({lo}, {hi}); dtmm fuses Relu, Relu6 and Relu_n1_to_1")
        self.activation(node, kinds[(lo, hi)])

    def pool(self, node: Any, kind: str) -> None:
        x = self.real(node, 0)
        if x.perm != NCHW:
            raise self.fail(node, "input layout is not NCHW")
        a = self.attrs(node)
        kernel = tuple(a["kernel_shape"])
        strides = tuple(a.get("strides", [1, 1]))
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.fail(node, "ceil_mode and dilated pooling are not supported")
        padding, pads = self.padding(node, self.tensors[x.tensor], kernel, strides, (1, 1))
        if pads:
            raise self.fail(node, f"pads {a.get('pads')} are neither SAME nor VALID")
        self.pending(
            node,
            kind,
            [x.tensor],
            NCHW,
            stride=strides,
            filter=kernel,
            padding=padding,
            activation="NONE",
        )

    def op_AveragePool(self, node: Any) -> None:
        self.pool(node, "AVERAGE_POOL_2D")

    def op_MaxPool(self, node: Any) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "the Indices output is not supported")
        self.pool(node, "MAX_POOL_2D")

    def op_GlobalAveragePool(self, node: Any) -> None:
        x = self.real(node, 0)
        if x.perm != NCHW:
            raise self.fail(node, "input layout is not NCHW")
        self.pending(node, "MEAN", [x.tensor], NCHW, axes=[1, 2])

    def op_Softmax(self, node: Any) -> None:
        x = self.real(node, 0)
        axis = int(self.attrs(node).get("axis", -1)) % len(x.perm)
        if x.perm[axis] != len(x.perm) - 1:
            raise self.fail(node, "softmax over an axis other than the innermost (channels)")
        self.pending(node, "SOFTMAX", [x.tensor], x.perm, beta=1.0)

    def op_Concat(self, node: Any) -> None:
        xs = [self.real(node, i) for i in range(len(node.input))]
        if len({x.perm for x in xs}) != 1:
            raise self.fail(node, "operands in different layouts")
        axis = int(self.attrs(node)["axis"]) % len(xs[0].perm)
        self.pending(
            node, "CONCATENATION", [x.tensor for x in xs], xs[0].perm, axis=xs[0].perm[axis]
        )

    def op_Pad(self, node: Any) -> None:
        x = self.real(node, 0)
        a = self.attrs(node)
        mode = a.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            raise self.fail(node, f"pad mode {mode!r}; only constant padding is supported")
        pads = a.get("pads")
        if pads is None:
            pads = [int(p) for p in np.asarray(self.const(node, 1).data).ravel()]
        if len(node.input) > 2 and node.input[2]:
            value = self.const(node, 2)
            real = np.asarray(value.data, np.float64).ravel()
            if value.scale is not None:
                real = (real - value.zero_point) * value.scale
            if real.size and abs(float(real[0])) > 0:
                raise self.fail(node, "padding with a value other than 0")
        rank = len(x.perm)
        if min(pads) < 0 or len(pads) != 2 * rank:
            raise self.fail(node, f"pads {list(pads)} for a rank-{rank} tensor")
        ir = [(0, 0)] * rank
        for i, p in enumerate(x.perm):
            ir[p] = (int(pads[i]), int(pads[i + rank]))
        self.pending(node, "PAD", [x.tensor], x.perm, pads=ir)


def quantize_float_onnx(path: str, calibration: np.ndarray, per_channel: bool = True) -> Any:
    """Quantize a float ONNX model to int8 QDQ with onnxruntime's static quantizer.

    ``calibration`` holds representative inputs in the model's own layout, with
    the batch axis first. Returns the quantized ``onnx.ModelProto``.
    """
    onnx = _import_onnx()
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "quantizing a float ONNX model needs onnxruntime: pip install 'dtmm[onnx]'"
        ) from e
    import os
    import tempfile

    proto = onnx.load(path)
    input_name = proto.graph.input[0].name
    data = np.asarray(calibration, np.float32)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(data):
                return None
            self.i += 1
            return {input_name: data[self.i - 1 : self.i]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        out = os.path.join(tmp, "q.onnx")
        quant_pre_process(path, pre, skip_symbolic_shape=True)
        quantize_static(
            pre,
            out,
            _Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
        return _fix_softmax_quantization(onnx.load(out))


def _fix_softmax_quantization(proto: Any) -> Any:
    """Give softmax outputs TFLite's fixed int8 quantization (1/256, -128).

    Calibration picks the observed range; TFLite's (and dtmm's) int8 softmax
    always produces probabilities at scale 1/256 with zero point -128.
    """
    from onnx import numpy_helper

    g = proto.graph
    softmax_outputs = {n.output[0] for n in g.node if n.op_type == "Softmax"}
    for q in g.node:
        if q.op_type != "QuantizeLinear" or q.input[0] not in softmax_outputs:
            continue
        scale_name, zp_name = q.output[0] + "/softmax_scale", q.output[0] + "/softmax_zp"
        g.initializer.append(numpy_helper.from_array(np.array(1 / 256, np.float32), scale_name))
        g.initializer.append(numpy_helper.from_array(np.array(-128, np.int8), zp_name))
        for n in g.node:
            if n is q or (n.op_type == "DequantizeLinear" and n.input[0] == q.output[0]):
                n.input[1], n.input[2] = scale_name, zp_name
    return proto


def is_quantized(path: str) -> bool:
    """Whether an ONNX file is a QDQ graph (it has QuantizeLinear nodes)."""
    onnx = _import_onnx()
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise ModelError(f"{path}: not a valid ONNX file ({e})") from e
    return any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
