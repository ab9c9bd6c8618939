"""Model.rounding="onnx": conv, depthwise and fully connected layers round
their requantization once (ONNX's QuantizeLinear after a float conv), with
the same kernels as TFLite's two roundings. Checked against an exact integer
oracle on every host kernel; tests/test_device.py checks the devices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import dtmm
from dtmm import _core, latency
from dtmm.calibrated import conv_patches

from conftest import quantized_tensor

LOWEST_SINGLE = 2.0**-11  # below it the compiler keeps TFLite's encoding


@settings(max_examples=300, deadline=None)
@given(
    m=st.floats(LOWEST_SINGLE, 1.0, exclude_max=True),
    acc=st.integers(-(2**24), 2**24),
)
def test_single_rounding_rounds_the_product_once(m, acc):
    assume(round(m * 2.0**31) < 2**31)  # else q would not fit: TFLite's encoding
    q, shift = _core.weight_multiplier(m, True)
    assert shift == 0 and abs(q - m * 2.0**31) <= 0.5
    # one rounding, half up: what the kernels' rounding high multiply gives
    assert _core.multiply_by_quantized_multiplier(acc, q, shift) == (acc * q + 2**30) >> 31


@given(m=st.floats(1e-9, 40.0))
def test_tflite_encoding_outside_the_single_rounding_range(m):
    assert _core.weight_multiplier(m, False) == _core.quantize_multiplier(m)
    if not LOWEST_SINGLE <= m < 1.0 or round(m * 2.0**31) == 2**31:
        assert _core.weight_multiplier(m, True) == _core.quantize_multiplier(m)


def accumulators(model: dtmm.Model, x: np.ndarray) -> np.ndarray:
    """The layer's int32 sums (bias included), [pixels, channels]."""
    op = model.ops[0]
    t = model.tensors
    w = t["w"]
    xr = x.astype(np.int64) - int(t["x"].zero_point[0])
    if op.type == "FULLY_CONNECTED":
        acc = xr.reshape(1, -1) @ w.data.astype(np.int64).T
    elif op.type == "DEPTHWISE_CONV_2D":
        taps = w.shape[1] * w.shape[2]
        patches = conv_patches(xr, op, (1, w.shape[1], w.shape[2], xr.shape[3]))
        acc = (patches.reshape(len(patches), taps, -1) * w.data.reshape(taps, -1)).sum(1)
    else:
        patches = conv_patches(xr, op, w.shape).astype(np.int64)
        acc = patches @ w.data.reshape(w.shape[0], -1).astype(np.int64).T
    return acc + t["b"].data.astype(np.int64)


def real_scales(model: dtmm.Model, channels: int) -> np.ndarray:
    t = model.tensors
    w_scales = np.broadcast_to(t["w"].scale, (channels,)).astype(np.float64)
    return np.float64(np.float32(t["x"].scale[0])) * w_scales / float(t["y"].scale[0])


def onnx_rounding_layer(case, density: float) -> tuple[dtmm.Model, np.ndarray]:
    """A random one-op model with model.rounding = "onnx" and an input for
    it, without activation, its output scale set so that the outputs spread
    over the int8 range (negative ones included: they are where the two
    encodings' kernels part) and every channel takes the single-rounding
    encoding."""
    kind, oh, ow, ci, co, k, stride = case
    elements = oh * ow * ci * stride * stride if kind != "FULLY_CONNECTED" else ci
    shape = latency.LayerShape(kind, elements, oh, ow, ci, co, k, k)
    rng = np.random.default_rng(sum(case[1:]))
    model = latency.random_layer(kind, shape, density, rng)
    model.ops[0].options["activation"] = "NONE"
    model.rounding = "onnx"
    t = model.tensors
    # weights below 16 keep the sums small enough for the scale to stay >= 2^-11
    t["w"].data = (np.sign(t["w"].data) * rng.integers(1, 16, t["w"].data.shape)).astype(np.int8)
    x = rng.integers(-128, 128, t["x"].shape).astype(np.int8)
    t["y"].zero_point = np.array([0])
    t["y"].scale = np.array([1.0], np.float32)
    acc = accumulators(model, x)
    t["y"].scale = np.array(
        [np.abs(acc * real_scales(model, acc.shape[1])).max() / 100], np.float32
    )
    return model, x


def exact_outputs(model: dtmm.Model, x: np.ndarray) -> np.ndarray:
    """The layer in integers: acc * q / 2^31 rounded once (half up)."""
    acc = accumulators(model, x)
    q = np.array(
        [_core.weight_multiplier(float(r), True) for r in real_scales(model, acc.shape[1])]
    )
    assert (q[:, 1] == 0).all(), "the layer should take the single-rounding encoding"
    y = model.tensors["y"]
    out = ((acc * q[:, 0]) + 2**30 >> 31) + int(y.zero_point[0])
    return np.clip(out, -128, 127).astype(np.int8).reshape(y.shape)


LAYERS = [
    # (kind, out_h, out_w, c_in, c_out, k, stride)
    ("CONV_2D", 4, 6, 16, 12, 3, 1),
    ("CONV_2D", 3, 5, 32, 20, 1, 2),
    ("CONV_2D", 3, 7, 8, 6, 1, 1),
    ("CONV_2D", 4, 4, 15, 5, 3, 2),
    ("CONV_2D", 5, 5, 3, 8, 3, 1),
    ("DEPTHWISE_CONV_2D", 5, 6, 16, 16, 3, 1),
    ("DEPTHWISE_CONV_2D", 4, 5, 6, 6, 3, 2),
    ("FULLY_CONNECTED", 1, 1, 70, 10, 1, 1),
]


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("density", [1.0, 0.5])
def test_every_host_kernel_rounds_once(case, density):
    model, x = onnx_rounding_layer(case, density)
    expected = exact_outputs(model, x)
    assert (expected < 0).mean() > 0.1 and (np.abs(expected.astype(int)) < 127).mean() > 0.8
    for sparse in ("never", "always", "csr"):
        blob = dtmm.compile(model, sparse=sparse)
        for reference in (False, True):
            got = dtmm.Runtime(blob, reference=reference).run(x)
            np.testing.assert_array_equal(
                got.reshape(expected.shape), expected, err_msg=f"{sparse} {reference}"
            )


def test_removed_dead_filters_fold_the_constant_their_rounding_gives():
    """A filter with no weights outputs its requantized bias. The compiler
    removes it and folds that constant into the next 1x1 conv's bias, so it
    must requantize as the model's rounding says: the biases are picked where
    TFLite's two roundings and the single one give different constants."""
    rng = np.random.default_rng(3)
    scale = (
        np.float64(np.float32(0.05)) * np.float64(np.float32(0.01)) / np.float64(np.float32(0.2))
    )
    single, twice = _core.weight_multiplier(scale, True), _core.weight_multiplier(scale, False)
    parting = [
        b
        for b in range(-20000, 20000)
        if _core.multiply_by_quantized_multiplier(b, *single)
        != _core.multiply_by_quantized_multiplier(b, *twice)
    ]
    assert len(parting) >= 3
    w1 = rng.integers(-15, 16, (8, 3, 3, 3)).astype(np.int8)
    b1 = rng.integers(-2000, 2000, 8).astype(np.int32)
    w1[[1, 4, 6]] = 0
    b1[[1, 4, 6]] = parting[:3]
    w2 = rng.integers(-127, 128, (5, 1, 1, 8)).astype(np.int8)

    tensors = {
        "x": quantized_tensor("x", (1, 6, 6, 3), 0.05, -3),
        "w1": quantized_tensor("w1", w1.shape, np.full(8, 0.01), 0, w1),
        "b1": quantized_tensor("b1", (8,), np.full(8, 0.0005), 0, b1, np.int32),
        "y1": quantized_tensor("y1", (1, 6, 6, 8), 0.2, 5),
        "w2": quantized_tensor("w2", w2.shape, np.full(5, 0.01), 0, w2),
        "b2": quantized_tensor("b2", (5,), np.full(5, 0.002), 0, np.zeros(5, np.int32), np.int32),
        "y2": quantized_tensor("y2", (1, 6, 6, 5), 0.3, 2),
    }
    conv = {"stride": (1, 1), "dilation": (1, 1), "activation": "NONE"}
    ops = [
        dtmm.Op("CONV_2D", ["x", "w1", "b1"], ["y1"], {**conv, "padding": "SAME"}, "c1"),
        dtmm.Op("CONV_2D", ["y1", "w2", "b2"], ["y2"], {**conv, "padding": "VALID"}, "c2"),
    ]
    x = rng.integers(-128, 128, (4, 6, 6, 3)).astype(np.int8)
    for rounding in ("tflite", "onnx"):
        model = dtmm.Model(tensors, ops, ["x"], ["y2"], rounding=rounding)
        keep_all = dtmm.Model(tensors, ops, ["x"], ["y2", "y1"], rounding=rounding)
        from dtmm.graph_passes import remove_dead_filters

        assert remove_dead_filters(model).tensors["w2"].shape == (5, 1, 1, 5)
        slim = dtmm.Runtime(dtmm.compile(model)).run(x)
        np.testing.assert_array_equal(slim, dtmm.Runtime(dtmm.compile(keep_all)).run(x)[0])
