"""dtmm against onnxruntime on the same QDQ ResNet-8 (ic01, 200 images), with
each of dtmm's two roundings, and where they part: per quantized activation,
the fraction of values that differ and by how much, and for the first conv,
dtmm's outputs against the exact real-valued requantization rounded once.

    python benchmarks/onnx_agreement.py

ONNX's QuantizeLinear rounds the real value once (onnxruntime runs this
graph's convs in float, then quantizes). An imported ONNX model gets
``rounding="onnx"``: conv and fully connected layers whose scale lies in
[2^-11, 1) round once. With ``rounding="tflite"`` (what TFLite files get,
bit-exact with TFLite Micro) the product is rounded to a 31-bit fixed point
and then shifted with rounding again: the two roundings differ from one on
values within about 2^-shift of a rounding boundary, and those steps compound
through the residual blocks.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

import dtmm
from dtmm.calibrated import conv_patches

from _common import DATA, require_data

QDQ = DATA / "models" / "onnx" / "resnet8_int8_qdq.onnx"
TFLITE = DATA / "models" / "resnet8" / "resnet8_int8.tflite"


def ort_run(graph: onnx.ModelProto, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    runs = [session.run(names, {feed: x[i : i + 1]}) for i in range(len(x))]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(names))]


def first_conv_against_single_rounding(x: np.ndarray, rounding: str) -> tuple[float, float]:
    """Fraction of the first conv's outputs where dtmm differs from rounding
    the exact real value once, and the farthest such value from a half."""
    model = dtmm.load(QDQ)
    model.rounding = rounding
    op = next(o for o in model.ops if o.type == "CONV_2D")
    xi, w, b = (model.tensors[n] for n in op.inputs[:3])
    y = model.tensors[op.outputs[0]]
    probe = model.copy()
    probe.outputs = [op.outputs[0]]
    got = dtmm.Runtime(dtmm.compile(probe)).run(x).astype(np.int64).reshape(-1, w.shape[0])
    patches = conv_patches(x.astype(np.float64) - float(xi.zero_point[0]), op, w.shape)
    acc = patches @ w.data.reshape(len(w.data), -1).T.astype(np.float64) + b.data
    real = acc * (float(xi.scale[0]) * w.scale.astype(np.float64)) / float(y.scale[0])
    lo = int(y.zero_point[0]) if op.options.get("activation") == "RELU" else -128
    once = np.clip(np.round(real) + int(y.zero_point[0]), lo, 127)
    differ = got != once
    fraction = real - np.floor(real)
    return float(differ.mean()), float(np.abs(fraction[differ] - 0.5).max(initial=0.0))


def main() -> None:
    require_data()
    data = np.load(DATA / "eval" / "ic01_cifar10_test200.npz")
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    y = data["y"]
    graph = onnx.load(str(QDQ))
    plain = ort_run(graph, x, [graph.graph.output[0].name])[0]
    o_pred = plain.reshape(len(x), -1).argmax(1)
    # every quantized activation as an output too (this changes which nodes
    # onnxruntime fuses, so its predictions are taken from the plain graph)
    quantized = [n.output[0] for n in graph.graph.node if n.op_type == "QuantizeLinear"]
    for name in quantized:
        graph.graph.output.append(onnx.helper.make_value_info(name, onnx.TypeProto()))
    theirs = dict(zip(quantized, ort_run(graph, x, quantized)))
    tflite = dtmm.Runtime(dtmm.compile(dtmm.load(TFLITE))).run(x)
    print(f"ResNet-8 QDQ on ic01 ({len(x)} images)")
    print(f"  onnxruntime accuracy {np.mean(o_pred == y):.1%}")
    for rounding in ("onnx", "tflite"):
        model = dtmm.load(QDQ)
        model.rounding = rounding
        probe = model.copy()
        probe.outputs = probe.outputs + [n for n in quantized if n not in probe.outputs]
        ours = dict(zip(probe.outputs, dtmm.Runtime(dtmm.compile(probe)).run(x)))
        out = ours[model.outputs[0]]
        d_pred = out.reshape(len(x), -1).argmax(1)
        same = np.mean((out.reshape(plain.shape) == plain).all(axis=1))
        print(f"\n  dtmm, rounding={rounding!r}")
        print(f"    accuracy             {np.mean(d_pred == y):.1%}")
        print(f"    top-1 agreement      {np.mean(o_pred == d_pred):.1%}")
        print(f"    outputs identical    {same:.1%} of the images")
        print(f"    identical to dtmm's TFLite import: {np.array_equal(out, tflite)}")
        share, worst = first_conv_against_single_rounding(x, rounding)
        print(
            f"    first conv against the exact value rounded once: {share:.3%} of outputs "
            f"differ, all within {worst:.4f} of a half"
        )
        print("    quantized activation (last 44 chars)         values differing   max steps")
        for name in quantized:
            a = theirs[name]
            if a.ndim == 4:
                a = a.transpose(0, 2, 3, 1)  # onnxruntime's graph is NCHW inside
            steps = np.abs(a.astype(np.int64) - ours[name].reshape(a.shape).astype(np.int64))
            print(f"    {name[-44:]:<44} {np.mean(steps > 0):>16.2%} {steps.max():>11d}")


if __name__ == "__main__":
    main()
