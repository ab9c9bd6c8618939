"""The same blob on the host, on an emulated Cortex-M55 and on a Cortex-M4:
bit-identical outputs (QEMU, the runner firmware built from dtmm's sources)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import dtmm
from dtmm import device

from conftest import data_path

pytestmark = pytest.mark.skipif(
    device.available() is not None, reason=f"device tools: {device.available()}"
)
TARGETS = ("qemu-m55", "qemu-m4")


def _eval(n: int) -> np.ndarray:
    ev = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    return (ev["x"][:n].astype(np.int16) - 128).astype(np.int8)


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_resnet8_host_equals_devices(sparsity):
    model = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    if sparsity:
        model = dtmm.prune.fc_blocks(dtmm.prune.filterlets(model, sparsity), sparsity)
    blob = dtmm.compile(model)
    x = _eval(3)
    host = dtmm.Runtime(blob).run(x)
    for target in TARGETS:
        result = device.run(blob, x, target)
        np.testing.assert_array_equal(result.outputs[0], host, err_msg=target)
        assert len(result.layers) == len(dtmm.inspect(blob).layers)


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_vww_host_equals_devices(sparsity):
    model = dtmm.load(data_path("models", "vww", "vww96_int8.tflite"))
    if sparsity:
        model = dtmm.prune.filterlets(model, sparsity)
    blob = dtmm.compile(model)
    part = np.load(data_path("eval", "vww01_coco96_200_part0.npz"))
    x = (part["x"][:1].astype(np.int16) - 128).astype(np.int8)
    host = dtmm.Runtime(blob).run(x)
    for target in TARGETS:
        np.testing.assert_array_equal(device.run(blob, x, target).outputs[0], host, err_msg=target)


def test_instruction_counts_are_deterministic_and_per_op():
    blob = dtmm.compile(dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite")))
    x = np.repeat(_eval(1), 2, axis=0)  # the same image twice
    result = device.run(blob, x, "qemu-m55")
    a, b = result.instructions_per_inference
    assert a == b == result.instructions > 0
    convs = [layer for layer in result.layers if layer.op == "CONV_2D"]
    assert convs and all(layer.macs > 0 and layer.instructions > 0 for layer in convs)
    # A layer with 4x the multiply-accumulates costs clearly more instructions.
    small = min(convs, key=lambda layer: layer.macs)
    big = max(convs, key=lambda layer: layer.macs)
    assert big.macs >= 4 * small.macs and big.instructions > 2 * small.instructions


def test_profile_counts_instructions_per_function():
    blob = dtmm.compile(dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite")))
    plain = device.run(blob, _eval(1), "qemu-m55")
    result = device.run(blob, _eval(1), "qemu-m55", profile=True)
    assert plain.functions is None
    np.testing.assert_array_equal(result.outputs[0], plain.outputs[0])
    names = [name for name, _ in result.functions]
    counts = [n for _, n in result.functions]
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0
    # the whole run covers the inference, whose convolutions are in the kernels
    assert sum(counts) > result.instructions
    conv = sum(layer.instructions for layer in result.layers if layer.op == "CONV_2D")
    kernels = ("run_groups", "run_filters", "stream_")
    kernel = sum(n for name, n in result.functions if any(k in name for k in kernels))
    assert 0.5 * conv < kernel <= conv
    assert "dtmm_init" in names and "main" in names


def test_unknown_target_and_bad_inputs():
    blob = dtmm.compile(dtmm.load(dtmm.demo.bundled_model()))
    with pytest.raises(ValueError, match="unknown target"):
        device.run(blob, np.zeros((1, 64), np.int8), "qemu-m99")
    with pytest.raises(ValueError, match="expected dtype int8"):
        device.run(blob, np.zeros((1, 64), np.float32))


# Randomized single-op layers (fewer than on the host: each is a QEMU run).
tw = pytest.importorskip("tflite_writer", reason="needs tflite-micro (pip install .[test])")
import test_ops  # noqa: E402
import test_rounding  # noqa: E402

DEVICE_SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


def _host_equals_m55(case) -> None:
    model_bytes, inputs = case
    model = dtmm.load(model_bytes)
    for sparse in ("never", "always"):
        blob = dtmm.compile(model, sparse=sparse)
        x = inputs if len(inputs) > 1 else inputs[0]
        host = dtmm.Runtime(blob).run(x)
        host = host if isinstance(host, list) else [host]
        got = device.run(blob, x, "qemu-m55").outputs
        for g, h in zip(got, host):
            np.testing.assert_array_equal(g.reshape(h.shape), h, err_msg=f"sparse={sparse}")


@DEVICE_SETTINGS
@given(test_ops.conv_case())
def test_random_conv_on_m55(case):
    _host_equals_m55(case)


@DEVICE_SETTINGS
@given(test_ops.conv_case(depthwise=True))
def test_random_depthwise_on_m55(case):
    _host_equals_m55(case)


@DEVICE_SETTINGS
@given(test_ops.fc_case())
def test_random_fully_connected_on_m55(case):
    _host_equals_m55(case)


@DEVICE_SETTINGS
@given(test_ops.binary_case(test_ops.OP.ADD))
def test_random_add_on_m55(case):
    _host_equals_m55(case)


@DEVICE_SETTINGS
@given(test_ops.unary_case("SOFTMAX"))
def test_random_softmax_on_m55(case):
    _host_equals_m55(case)


# The device convolution's edge cases, deterministically: C_in below, at and
# between multiples of 16 (the row-segment loop and side-by-side windows),
# 1x1 to 5x5, strides 2 and 3, rows split into segments (a strip too small
# for the whole row) or segments of several rows (with a stride, and flat
# 1x1 ones whose rows do not fill groups of four), filters of more than four
# 16-byte blocks (several passes), output widths that leave a partial group
# of four pixels, every
# density from dense to fully pruned, 7x7 windows (masks decoded bit by bit),
# windows over 1 KB (the reference loop on the M55), and more than 64 filters
# (two chunks, each with its own row of emptied filters' constant outputs,
# one whole vector and a partial one), windows of at most 16 bytes (one
# predicated weight vector per filter) or 32 (two, the second predicated),
# and block lists (the row loop's sparse filters) of more than four blocks
# per tap (C_in 80), over more than 24 taps (7x7: the mask read in slices)
# and too long for 64 filters to share the run table (chunks of 35 and 26).
RUN_CONV_CASES = [
    # (out_h, out_w, c_in, c_out, k, stride)
    (5, 7, 3, 8, 3, 1),
    (6, 6, 15, 16, 3, 1),
    (4, 9, 16, 5, 3, 2),
    (3, 5, 60, 8, 3, 1),
    (4, 4, 64, 12, 1, 1),
    (3, 6, 8, 4, 5, 2),
    (2, 3, 130, 4, 3, 1),
    (3, 4, 16, 6, 7, 1),
    (4, 8, 32, 8, 3, 1),
    (3, 5, 16, 90, 1, 1),
    (2, 5, 32, 90, 3, 1),
    (3, 7, 8, 20, 1, 1),
    (3, 5, 1, 6, 3, 2),
    (3, 5, 20, 6, 1, 1),
    (4, 5, 2, 7, 3, 2),
    (3, 40, 64, 8, 3, 1),
    (5, 8, 16, 8, 3, 2),
    (3, 6, 16, 8, 5, 2),
    (3, 4, 16, 8, 3, 3),
    (5, 7, 32, 8, 1, 2),
    (2, 4, 80, 6, 3, 1),
    (2, 4, 64, 40, 3, 1),
    (3, 4, 16, 30, 7, 1),
]


@pytest.mark.parametrize("case", RUN_CONV_CASES, ids=lambda c: "x".join(map(str, c)))
def test_device_convolution_edge_cases(case):
    from dtmm import latency

    oh, ow, ci, co, k, stride = case
    rng = np.random.default_rng(sum(case))
    for density in (1.0, 0.5, 0.1, 0.0):
        shape = latency.LayerShape("CONV_2D", oh * ow * ci * stride * stride, oh, ow, ci, co, k, k)
        model = latency.random_layer("CONV_2D", shape, density, rng)
        x = rng.integers(-128, 128, (1, oh * stride, ow * stride, ci)).astype(np.int8)
        for sparse in ("never", "always"):
            blob = dtmm.compile(model, sparse=sparse)
            host = dtmm.Runtime(blob).run(x)
            for target in TARGETS:
                got = device.run(blob, x, target).outputs[0]
                np.testing.assert_array_equal(
                    got, host, err_msg=f"{target} density={density} sparse={sparse}"
                )


def test_device_convolution_left_shifts():
    """Channels whose requantization scale is at least 1 shift left before
    the multiply. The Helium filter loops in assembly take shifts of at most
    0 only and leave such layers to the C++ loop, which must match the host too.
    Small weights and inputs near the zero point keep the outputs in range
    (saturated outputs would hide a wrong shift)."""
    from dtmm import latency

    rng = np.random.default_rng(7)
    shape = latency.LayerShape("CONV_2D", 4 * 9 * 32, 4, 9, 32, 12, 3, 3)
    for density in (1.0, 0.4):
        model = latency.random_layer("CONV_2D", shape, density, rng)
        t = model.tensors
        t["w"].data = (np.sign(t["w"].data) * rng.integers(1, 3, t["w"].data.shape)).astype(np.int8)
        t["b"].data = rng.integers(-20, 21, t["b"].data.shape).astype(np.int32)
        # Effective scales from below 0.5 to above 1: right and left shifts mixed.
        t["y"].scale = np.array(
            [float(t["x"].scale[0]) * float(np.median(t["w"].scale))], np.float32
        )
        if density < 1:
            # Emptied filters, one shifting left and one right: the FWCS
            # kernel's constant row requantizes their biases four at a time.
            emptied = [int(np.argmax(t["w"].scale)), int(np.argmin(t["w"].scale))]
            t["w"].data[emptied] = 0
            t["b"].data[emptied] = [37, -37]  # a left shift doubles 37 at least
        zero_point = int(t["x"].zero_point[0])
        x = (zero_point + rng.integers(-2, 3, (1, 4, 9, 32))).astype(np.int8)
        for sparse in ("never", "always"):
            blob = dtmm.compile(model, sparse=sparse)
            host = dtmm.Runtime(blob).run(x)
            assert np.ptp(host) > 20 and (np.abs(host.astype(int)) < 127).mean() > 0.9
            got = device.run(blob, x, "qemu-m55").outputs[0]
            np.testing.assert_array_equal(got, host, err_msg=f"density={density} sparse={sparse}")


def test_device_depthwise_left_shifts():
    """A depthwise layer whose channels mix left and right shifts: the
    Helium loop's general requantization (multiply_by_quantized_multiplier4)."""
    from dtmm import latency

    rng = np.random.default_rng(11)
    shape = latency.LayerShape("DEPTHWISE_CONV_2D", 6 * 7 * 24, 6, 7, 24, 24, 3, 3)
    model = latency.random_layer("DEPTHWISE_CONV_2D", shape, 1.0, rng)
    t = model.tensors
    t["w"].data = (np.sign(t["w"].data) * rng.integers(1, 3, t["w"].data.shape)).astype(np.int8)
    t["b"].data = rng.integers(-20, 21, t["b"].data.shape).astype(np.int32)
    t["y"].scale = np.array([float(t["x"].scale[0]) * float(np.median(t["w"].scale))], np.float32)
    zero_point = int(t["x"].zero_point[0])
    x = (zero_point + rng.integers(-3, 4, (1, 6, 7, 24))).astype(np.int8)
    blob = dtmm.compile(model)
    host = dtmm.Runtime(blob).run(x)
    assert np.ptp(host) > 20 and (np.abs(host.astype(int)) < 127).mean() > 0.9
    np.testing.assert_array_equal(device.run(blob, x, "qemu-m55").outputs[0], host)


@pytest.mark.parametrize("case", test_rounding.LAYERS, ids=lambda c: "x".join(map(str, c)))
def test_device_single_rounding(case):
    """Model.rounding="onnx" layers (every shift 0) on the devices: the M55's
    assembly filter loops skip the negative lanes' correction there."""
    for density in (1.0, 0.5):
        model, x = test_rounding.onnx_rounding_layer(case, density)
        expected = test_rounding.exact_outputs(model, x)
        for sparse in ("never", "always"):
            blob = dtmm.compile(model, sparse=sparse)
            for target in TARGETS:
                got = device.run(blob, x, target).outputs[0]
                np.testing.assert_array_equal(
                    got.reshape(expected.shape),
                    expected,
                    err_msg=f"{target} density={density} sparse={sparse}",
                )


@pytest.mark.parametrize(
    "case",
    [c for c in test_rounding.LAYERS if c[0] == "CONV_2D"],
    ids=lambda c: "x".join(map(str, c[1:])),
)
def test_device_mixed_shifts(case):
    """An ONNX import's layer whose channels mix the single-rounding encoding
    (shift 0, scales of at least 2^-11) with TFLite's (a negative shift, kept
    below 2^-11): the M55's assembly loops correct the negative lanes filter
    by filter. Every other channel's scale is 2^-12 (multiplier 2^30, shift
    -11) and, where the input is its zero point (the left half), its sum is
    its bias, set so that those outputs are negative exact halves: the one
    place where the two encodings' roundings part."""
    from dtmm import latency

    _, oh, ow, ci, co, k, stride = case
    rng = np.random.default_rng(sum(case[1:]))
    tiny = np.arange(co) % 2 == 0
    for density in (1.0, 0.5):
        shape = latency.LayerShape("CONV_2D", oh * ow * ci * stride * stride, oh, ow, ci, co, k, k)
        model = latency.random_layer("CONV_2D", shape, density, rng)
        model.ops[0].options["activation"] = "NONE"
        model.rounding = "onnx"
        t = model.tensors
        for name in ("x", "y"):
            t[name].scale = np.array([1.0], np.float32)
            t[name].zero_point = np.array([0])
        t["w"].scale = np.where(tiny, 2.0**-12, 2.0**-8).astype(np.float32)
        kept = t["w"].data != 0
        t["w"].data = (rng.integers(-15, 16, kept.shape) * kept).astype(np.int8)
        # Two emptied filters: FWCS requantizes their ties in its constant row.
        t["w"].data[[0, 2]] = 0
        ties = -2 * (1024 + 2048 * (np.arange(co) % 4))
        t["b"].data = np.where(tiny, ties, 0).astype(np.int32)
        x = rng.integers(-128, 128, t["x"].shape).astype(np.int8)
        x[:, :, : x.shape[2] // 2] = 0
        for sparse in ("never", "always"):
            blob = dtmm.compile(model, sparse=sparse)
            host = dtmm.Runtime(blob).run(x)
            # bias / 2^12 = -j - 0.5, which TFLite rounds away from zero
            np.testing.assert_array_equal(
                host[:, :, 0, tiny], np.broadcast_to(ties[tiny] // 4096, (1, oh, tiny.sum()))
            )
            assert np.ptp(host[..., ~tiny].astype(int)) > 20
            for target in TARGETS:
                got = device.run(blob, x, target).outputs[0]
                np.testing.assert_array_equal(
                    got, host, err_msg=f"{target} density={density} sparse={sparse}"
                )


# Depthwise on the M55: depth below 4, a multiple of 4, of 16, stride 2,
# borders on every side.
DEPTHWISE_CASES = [(5, 7, 3, 3, 1), (4, 6, 8, 3, 2), (6, 5, 16, 3, 1), (3, 4, 48, 5, 2)]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: "x".join(map(str, c)))
def test_device_depthwise_edge_cases(case):
    from dtmm import latency

    oh, ow, depth, k, stride = case
    rng = np.random.default_rng(sum(case))
    shape = latency.LayerShape(
        "DEPTHWISE_CONV_2D", oh * ow * depth * stride * stride, oh, ow, depth, depth, k, k
    )
    model = latency.random_layer("DEPTHWISE_CONV_2D", shape, 1.0, rng)
    x = rng.integers(-128, 128, (2, oh * stride, ow * stride, depth)).astype(np.int8)
    blob = dtmm.compile(model)
    host = dtmm.Runtime(blob).run(x)
    for target in TARGETS:
        np.testing.assert_array_equal(device.run(blob, x, target).outputs[0], host, err_msg=target)
