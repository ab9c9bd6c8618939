"""ONNX front end: QDQ import, float import with calibration, layouts, errors."""

from __future__ import annotations

import numpy as np
import pytest

import dtmm

from conftest import data_path

onnx = pytest.importorskip("onnx", reason="the ONNX front end needs 'onnx' (pip install .[onnx])")
ort = pytest.importorskip("onnxruntime", reason="float ONNX import needs onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _run(blob: bytes, x: np.ndarray) -> np.ndarray:
    out = dtmm.Runtime(blob).run(x)
    return out[0] if isinstance(out, list) else out


def _ort(model: object, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    raw = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    s = ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def test_qdq_resnet8_is_bit_identical_to_the_tflite_model():
    """tf2onnx's QDQ ResNet-8 carries the same int8 weights and scales as the
    .tflite; imported and given TFLite's rounding, it must compute exactly
    what the .tflite computes."""
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    from_onnx = dtmm.load(data_path("models", "onnx", "resnet8_int8_qdq.onnx"))
    from_tflite = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    assert (from_onnx.rounding, from_tflite.rounding) == ("onnx", "tflite")
    assert [op.type for op in from_onnx.ops] == [op.type for op in from_tflite.ops]
    from_onnx.rounding = "tflite"
    np.testing.assert_array_equal(
        _run(dtmm.compile(from_onnx), x), _run(dtmm.compile(from_tflite), x)
    )


def test_qdq_resnet8_agrees_with_onnxruntime():
    """With ONNX's rounding (one rounding per requantization, as
    QuantizeLinear after a float conv) the imported model predicts what
    onnxruntime predicts on the same QDQ graph; with TFLite's two roundings
    the two part on a few percent of the images (measured: 97%)."""
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    qdq_path = data_path("models", "onnx", "resnet8_int8_qdq.onnx")
    theirs = _ort(onnx.load(str(qdq_path)), x).argmax(1)
    model = dtmm.load(qdq_path)
    ours = _run(dtmm.compile(model), x).argmax(1)
    assert (ours == theirs).mean() >= 0.99
    y = data["y"]
    assert abs((ours == y).mean() - (theirs == y).mean()) <= 0.005
    model.rounding = "tflite"
    assert (_run(dtmm.compile(model), x).argmax(1) == theirs).mean() < 0.99


def test_model_rounding_is_checked():
    model = dtmm.load(data_path("models", "onnx", "resnet8_int8_qdq.onnx"))
    model.rounding = "nearest"
    with pytest.raises(ValueError, match="model.rounding must be one of tflite, onnx"):
        dtmm.compile(model)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_float_resnet8_quantized_with_calibration(layout):
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = data["x"].astype(np.float32)
    model_in = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
    path = data_path("models", "onnx", f"resnet8_fp32_{layout}.onnx")
    model = dtmm.load(path, calibration=model_in[:40])
    assert model.tensors[model.inputs[0]].shape == (1, 32, 32, 3)  # NHWC either way
    pred = _run(dtmm.compile(model), x[40:]).argmax(1)
    float_pred = _ort(onnx.load(str(path)), model_in[40:]).argmax(1)
    held_out = data["y"][40:]
    assert (pred == held_out).mean() >= (float_pred == held_out).mean() - 0.02


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _zoo_model(rng: np.random.Generator) -> onnx.ModelProto:
    """A float NCHW graph touching every importer path: padded, strided,
    depthwise and 1x1 convs, Clip, explicit asymmetric pads, MaxPool, Concat,
    Mul, Pad, a flatten of a 4x4 map into Gemm, MatMul + Add, Softmax."""
    w = lambda *s: rng.normal(0, 0.4, s).astype(np.float32)  # noqa: E731
    inits = [
        _init("w1", w(8, 3, 3, 3)),
        _init("b1", w(8)),
        _init("wd", w(8, 1, 3, 3)),
        _init("bd", w(8)),
        _init("w2", w(6, 8, 3, 3)),
        _init("w3", w(4, 8, 1, 1)),
        _init("b3", w(4)),
        _init("wg", w(5, 10 * 5 * 4)),
        _init("bg", w(5)),
        _init("wm", w(5, 7)),
        _init("bm", w(7)),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 0], np.int64), "pads"),
        _init("lo", np.array(0.0)),
        _init("hi", np.array(6.0)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node(
            "Conv", ["r1", "wd", "bd"], ["c2"], group=8, strides=[2, 2], pads=[0, 0, 1, 1]
        ),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("Conv", ["r2", "w2"], ["c3"], pads=[2, 1, 0, 1]),  # -> 6x[8,8]
        helper.make_node("MaxPool", ["c3"], ["p3"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c4"], strides=[2, 2]),  # -> 4x[4,4]
        helper.make_node("Concat", ["p3", "c4"], ["cat"], axis=1),  # 10 x [4, 4]
        helper.make_node("Mul", ["cat", "cat"], ["sq"]),
        helper.make_node("Pad", ["sq", "pads"], ["padded"]),  # -> 10 x [6, 5]
        helper.make_node("MaxPool", ["padded"], ["p5"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("Flatten", ["p5"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wg", "bg"], ["g"], transB=1),
        helper.make_node("Relu", ["g"], ["gr"]),
        helper.make_node("MatMul", ["gr", "wm"], ["mm"]),
        helper.make_node("Add", ["mm", "bm"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "zoo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_every_supported_onnx_op_matches_onnxruntime(tmp_path):
    """Float graph -> QDQ (onnxruntime's quantizer) -> dtmm. Rounding once as
    onnxruntime does, dtmm's fixed-point int8 must give onnxruntime's outputs
    (a layout or padding mistake would be far off; measured: identical)."""
    from dtmm.onnx_frontend import quantize_float_onnx

    rng = np.random.default_rng(0)
    path = tmp_path / "zoo.onnx"
    onnx.save(_zoo_model(rng), path)
    x = rng.uniform(-1, 1, (48, 3, 16, 16)).astype(np.float32)
    qdq = quantize_float_onnx(str(path), x[:32])
    model = dtmm.load(path, calibration=x[:32])
    assert {op.type for op in model.ops} >= {
        "QUANTIZE",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "PAD",
        "MAX_POOL_2D",
        "CONCATENATION",
        "MUL",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    }
    ours = _run(dtmm.compile(model), x[32:].transpose(0, 2, 3, 1))
    ref = _ort(qdq, x[32:])
    assert ours.dtype == np.float32  # the graph ends in DequantizeLinear
    steps = np.abs(ours - ref) * 256  # differences in steps of the 1/256 output grid
    # A value on a rounding boundary in float32 can still part one step.
    assert (steps < 0.5).mean() >= 0.98
    assert (ours.argmax(1) == ref.argmax(1)).all()


def _qdq_graph(nodes, inits, out_shape=(1, 4)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_op_is_named(tmp_path):
    model = _qdq_graph([helper.make_node("Tanh", ["x"], ["y"], name="my_tanh")], [])
    path = tmp_path / "tanh.onnx"
    onnx.save(model, path)
    with pytest.raises(dtmm.UnsupportedOpError, match="Tanh.*my_tanh"):
        dtmm.load(path, calibration=np.zeros((2, 4), np.float32))


def test_float_model_without_calibration_says_what_to_pass(tmp_path):
    model = _qdq_graph([helper.make_node("Relu", ["x"], ["y"])], [])
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    with pytest.raises(ValueError, match="calibration="):
        dtmm.load(path)


def test_corrupt_onnx_file_is_a_model_error(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(dtmm.ModelError, match="bad.onnx"):
        dtmm.load(path)
