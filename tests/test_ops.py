"""Randomized single-op models: dtmm (optimized and reference kernels) must
equal the TFLite Micro reference interpreter bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dtmm

tw = pytest.importorskip("tflite_writer", reason="needs tflite-micro (pip install .[test])")
from conftest import tflm_run  # noqa: E402

TT, OP = tw.TT, tw.OP
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTIVATIONS = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])


def check(model_bytes: bytes, inputs: list[np.ndarray], num_outputs: int = 1) -> None:
    """Every kernel choice (dense, FWCS/block-sparse, CSR; optimized and
    reference loops; with and without the host workspace, which selects the
    host SIMD paths or the portable ones) must reproduce TFLite Micro exactly."""
    expected = tflm_run(model_bytes, inputs, num_outputs)
    model = dtmm.load(model_bytes)
    for sparse in ("never", "always", "csr"):
        blob = dtmm.compile(model, sparse=sparse)
        for reference in (False, True):
            rt = dtmm.Runtime(blob, reference=reference)
            got = rt.run(inputs if len(inputs) > 1 else inputs[0])
            got = got if isinstance(got, list) else [got]
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype
                np.testing.assert_array_equal(
                    g.reshape(e.shape), e, err_msg=f"sparse={sparse} reference={reference}"
                )
        portable = dtmm._core.Interpreter(blob, False, False)
        for i, x in enumerate(inputs):
            portable.set_input(i, np.ascontiguousarray(x))
        portable.invoke()
        for i, e in enumerate(expected):
            np.testing.assert_array_equal(
                portable.get_output(i).reshape(e.shape), e, err_msg=f"sparse={sparse} no workspace"
            )


def rand_i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def scale(rng: np.random.Generator, lo: float = 1e-3, hi: float = 1.0) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def conv_like(draw, depthwise: bool, wide: bool):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 2))
    # Wide rows (few of them, to stay quick) reach the host kernels that take
    # rows of 16 or more output pixels eight at a time.
    h, w = (
        (draw(st.integers(1, 5)), draw(st.integers(17, 45)))
        if wide
        else (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    )
    cin = draw(st.sampled_from([1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 48, 70]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    act = draw(ACTIVATIONS)
    mult = draw(st.integers(1, 3)) if depthwise else 1
    cout = cin * mult if depthwise else draw(st.integers(1, 40))
    eff_h, eff_w = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    if padding == "VALID" and (eff_h > h or eff_w > w):
        padding = "SAME"
    return rng, n, h, w, cin, cout, kh, kw, stride, dilation, padding, act, mult


def out_size(size: int, k: int, s: int, d: int, padding: str) -> int:
    eff = (k - 1) * d + 1
    return (size + s - 1) // s if padding == "SAME" else (size - eff + s) // s


@st.composite
def conv_case(draw, depthwise: bool = False, wide: bool = False):
    rng, n, h, w, cin, cout, kh, kw, stride, dil, padding, act, mult = conv_like(
        draw, depthwise, wide
    )
    g = tw.Graph()
    s_in, zp_in = scale(rng, 0.005, 0.2), int(rng.integers(-128, 128))
    w_scales = np.array([scale(rng, 1e-3, 0.05) for _ in range(cout)], np.float32)
    fshape = (1, kh, kw, cout) if depthwise else (cout, kh, kw, cin)
    weights = rng.integers(-127, 128, size=fshape, dtype=np.int8)
    if draw(st.booleans()):  # some output channels entirely zero (pruned filters)
        if depthwise:
            weights[..., : max(1, cout // 3)] = 0
        else:
            weights[: max(1, cout // 3)] = 0
    if draw(st.booleans()):  # pruned filterlets: whole C_in vectors at one tap set to zero
        mask = rng.random(weights.shape[:3]) < draw(st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]))
        if not depthwise:
            weights[mask] = 0
    bias = rng.integers(-5000, 5000, size=cout, dtype=np.int32)
    k = kh * kw * (1 if depthwise else cin)
    s_out = float(s_in * np.median(w_scales) * 127 * 30 * np.sqrt(k) / 127) * float(
        np.exp(rng.uniform(-1.5, 1.5))
    )
    oh, ow = (
        out_size(h, kh, stride[0], dil[0], padding),
        out_size(w, kw, stride[1], dil[1], padding),
    )
    x = g.tensor((n, h, w, cin), scale=s_in, zero_point=zp_in)
    f = g.tensor(fshape, scale=w_scales, zero_point=0, axis=3 if depthwise else 0, data=weights)
    b = g.tensor((cout,), TT.INT32, scale=s_in * w_scales, zero_point=0, axis=0, data=bias)
    y = g.tensor((n, oh, ow, cout), scale=s_out, zero_point=int(rng.integers(-128, 128)))
    if depthwise:
        opts = tw.options(
            "DepthwiseConv2DOptions",
            padding=tw.PAD[padding],
            strideH=stride[0],
            strideW=stride[1],
            dilationHFactor=dil[0],
            dilationWFactor=dil[1],
            depthMultiplier=mult,
            fusedActivationFunction=tw.ACT[act],
        )
        g.op(OP.DEPTHWISE_CONV_2D, [x, f, b], [y], *opts)
    else:
        opts = tw.options(
            "Conv2DOptions",
            padding=tw.PAD[padding],
            strideH=stride[0],
            strideW=stride[1],
            dilationHFactor=dil[0],
            dilationWFactor=dil[1],
            fusedActivationFunction=tw.ACT[act],
        )
        g.op(OP.CONV_2D, [x, f, b], [y], *opts)
    return g.build([x], [y]), [rand_i8(rng, (n, h, w, cin))]


@SETTINGS
@given(conv_case())
def test_conv2d(case):
    check(*case)


@SETTINGS
@given(conv_case(depthwise=True))
def test_depthwise_conv2d(case):
    check(*case)


@SETTINGS
@given(conv_case(wide=True))
def test_conv2d_wide_rows(case):
    check(*case)


@SETTINGS
@given(conv_case(depthwise=True, wide=True))
def test_depthwise_conv2d_wide_rows(case):
    check(*case)


@st.composite
def fc_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batches, depth, units = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 300)),
        draw(st.integers(1, 40)),
    )
    act = draw(ACTIVATIONS)
    g = tw.Graph()
    s_in, s_w = scale(rng, 0.005, 0.2), scale(rng, 1e-3, 0.05)
    x = g.tensor((batches, depth), scale=s_in, zero_point=int(rng.integers(-128, 128)))
    wt = g.tensor(
        (units, depth),
        scale=s_w,
        zero_point=0,
        data=rng.integers(-127, 128, size=(units, depth), dtype=np.int8),
    )
    inputs = [x, wt]
    if draw(st.booleans()):  # pruned blocks of 16 inputs, or single weights
        w_data = wt.buffer.data
        dense = np.frombuffer(w_data, np.int8).reshape(units, depth).copy()
        if draw(st.booleans()):
            per_row = -(-depth // 16)
            keep = rng.random((units, per_row)) >= draw(st.sampled_from([0.3, 0.7, 1.0]))
            dense[~np.repeat(keep, 16, axis=1)[:, :depth]] = 0
        else:
            dense[rng.random(dense.shape) < 0.6] = 0
        wt.buffer.data = dense.tobytes()
    if draw(st.booleans()):
        inputs.append(
            g.tensor(
                (units,),
                TT.INT32,
                scale=s_in * s_w,
                zero_point=0,
                data=rng.integers(-9000, 9000, size=units, dtype=np.int32),
            )
        )
    s_out = s_in * s_w * 127 * 20 * np.sqrt(depth) / 4 * float(np.exp(rng.uniform(-1, 1)))
    y = g.tensor((batches, units), scale=s_out, zero_point=int(rng.integers(-128, 128)))
    g.op(
        OP.FULLY_CONNECTED,
        inputs,
        [y],
        *tw.options("FullyConnectedOptions", fusedActivationFunction=tw.ACT[act]),
    )
    return g.build([x], [y]), [rand_i8(rng, (batches, depth))]


@SETTINGS
@given(fc_case())
def test_fully_connected(case):
    check(*case)


@st.composite
def binary_case(draw, code: int):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    bshape = tuple(d if draw(st.booleans()) else 1 for d in shape)
    if draw(st.booleans()):
        bshape = bshape[draw(st.integers(0, len(bshape) - 1)) :]
    act = draw(ACTIVATIONS)
    g = tw.Graph()
    sa, sb = scale(rng, 0.01, 1.0), scale(rng, 0.01, 1.0)
    a = g.tensor(shape, scale=sa, zero_point=int(rng.integers(-128, 128)))
    b = g.tensor(bshape, scale=sb, zero_point=int(rng.integers(-128, 128)))
    s_out = (sa + sb) * 2 if code == OP.ADD else sa * sb * 128
    y = g.tensor(
        shape,
        scale=s_out * float(np.exp(rng.uniform(-1, 1))),
        zero_point=int(rng.integers(-128, 128)),
    )
    name = "AddOptions" if code == OP.ADD else "MulOptions"
    g.op(code, [a, b], [y], *tw.options(name, fusedActivationFunction=tw.ACT[act]))
    return g.build([a, b], [y]), [rand_i8(rng, shape), rand_i8(rng, bshape)]


@SETTINGS
@given(binary_case(OP.ADD))
def test_add(case):
    check(*case)


@SETTINGS
@given(binary_case(OP.MUL))
def test_mul(case):
    check(*case)


@st.composite
def pool_case(draw, code: int):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, h, w, c = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 10)),
        draw(st.integers(1, 10)),
        draw(st.integers(1, 20)),
    )
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if padding == "VALID" and (fh > h or fw > w):
        padding = "SAME"
    act = draw(ACTIVATIONS)
    g = tw.Graph()
    s, zp = scale(rng, 0.01, 0.5), int(rng.integers(-128, 128))
    x = g.tensor((n, h, w, c), scale=s, zero_point=zp)
    y = g.tensor(
        (n, out_size(h, fh, sh, 1, padding), out_size(w, fw, sw, 1, padding), c),
        scale=s,
        zero_point=zp,
    )
    g.op(
        code,
        [x],
        [y],
        *tw.options(
            "Pool2DOptions",
            padding=tw.PAD[padding],
            strideH=sh,
            strideW=sw,
            filterHeight=fh,
            filterWidth=fw,
            fusedActivationFunction=tw.ACT[act],
        ),
    )
    return g.build([x], [y]), [rand_i8(rng, (n, h, w, c))]


@SETTINGS
@given(pool_case(OP.AVERAGE_POOL_2D))
def test_average_pool(case):
    check(*case)


@SETTINGS
@given(pool_case(OP.MAX_POOL_2D))
def test_max_pool(case):
    check(*case)


@st.composite
def mean_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 9)),
        draw(st.integers(1, 9)),
        draw(st.integers(1, 16)),
    )
    axes = draw(st.sampled_from([[1, 2], [2, 1], [1], [2], [3], [1, 2, 3]]))
    keep = draw(st.booleans())
    g = tw.Graph()
    s = scale(rng, 0.01, 0.5)
    x = g.tensor(shape, scale=s, zero_point=int(rng.integers(-128, 128)))
    ax = g.tensor((len(axes),), TT.INT32, data=np.array(axes, np.int32))
    oshape = (
        [1 if i in axes else d for i, d in enumerate(shape)]
        if keep
        else [d for i, d in enumerate(shape) if i not in axes]
    )
    y = g.tensor(
        tuple(oshape),
        scale=s * float(np.exp(rng.uniform(-1, 1))),
        zero_point=int(rng.integers(-128, 128)),
    )
    g.op(OP.MEAN, [x, ax], [y], *tw.options("ReducerOptions", keepDims=keep))
    return g.build([x], [y]), [rand_i8(rng, shape)]


@SETTINGS
@given(mean_case())
def test_mean(case):
    check(*case)


@st.composite
def pad_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    pads = np.array([[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in shape], np.int32)
    g = tw.Graph()
    s, zp = scale(rng, 0.01, 0.5), int(rng.integers(-128, 128))
    x = g.tensor(shape, scale=s, zero_point=zp)
    p = g.tensor(pads.shape, TT.INT32, data=pads)
    y = g.tensor(
        tuple(int(d + a + b) for d, (a, b) in zip(shape, pads)),
        scale=s,
        zero_point=zp,
    )
    if draw(st.booleans()):
        v = g.tensor((1,), scale=s, zero_point=zp, data=rand_i8(rng, (1,)))
        g.op(OP.PADV2, [x, p, v], [y])
    else:
        g.op(OP.PAD, [x, p], [y])
    return g.build([x], [y]), [rand_i8(rng, shape)]


@SETTINGS
@given(pad_case())
def test_pad(case):
    check(*case)


@st.composite
def concat_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 4))
    base = [draw(st.integers(1, 5)) for _ in range(rank)]
    axis = draw(st.integers(-rank, rank - 1))
    k = draw(st.integers(1, 4))
    g = tw.Graph()
    s, zp = scale(rng, 0.01, 0.5), int(rng.integers(-128, 128))
    shapes, ins = [], []
    for _ in range(k):
        sh = list(base)
        sh[axis] = draw(st.integers(1, 4))
        shapes.append(tuple(sh))
        ins.append(g.tensor(tuple(sh), scale=s, zero_point=zp))
    out = list(base)
    out[axis] = sum(sh[axis] for sh in shapes)
    y = g.tensor(tuple(out), scale=s, zero_point=zp)
    g.op(OP.CONCATENATION, ins, [y], *tw.options("ConcatenationOptions", axis=axis))
    return g.build(ins, [y]), [rand_i8(rng, sh) for sh in shapes]


@SETTINGS
@given(concat_case())
def test_concatenation(case):
    check(*case)


@st.composite
def unary_case(draw, kind: str):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    g = tw.Graph()
    s, zp = scale(rng, 0.002, 0.5), int(rng.integers(-128, 128))
    if kind == "QUANTIZE_FLOAT":
        x = g.tensor(shape, TT.FLOAT32)
        y = g.tensor(shape, scale=s, zero_point=zp)
        g.op(OP.QUANTIZE, [x], [y])
        data = (rng.standard_normal(shape) * s * 100).astype(np.float32)
        return g.build([x], [y]), [data]
    x = g.tensor(shape, scale=s, zero_point=zp)
    if kind == "DEQUANTIZE":
        y = g.tensor(shape, TT.FLOAT32)
        g.op(OP.DEQUANTIZE, [x], [y])
    elif kind == "REQUANTIZE":
        y = g.tensor(
            shape,
            scale=s * float(np.exp(rng.uniform(-2, 2))),
            zero_point=int(rng.integers(-128, 128)),
        )
        g.op(OP.QUANTIZE, [x], [y])
    elif kind == "SOFTMAX":
        y = g.tensor(shape, scale=1 / 256, zero_point=-128)
        beta = float(draw(st.sampled_from([1.0, 0.5, 2.0])))
        g.op(OP.SOFTMAX, [x], [y], *tw.options("SoftmaxOptions", beta=beta))
    elif kind == "LOGISTIC":
        y = g.tensor(shape, scale=1 / 256, zero_point=-128)
        g.op(OP.LOGISTIC, [x], [y])
    elif kind == "RESHAPE":
        y = g.tensor((int(np.prod(shape)),), scale=s, zero_point=zp)
        g.op(OP.RESHAPE, [x], [y])
    return g.build([x], [y]), [rand_i8(rng, shape)]


@SETTINGS
@given(unary_case("SOFTMAX"))
def test_softmax(case):
    check(*case)


@SETTINGS
@given(unary_case("LOGISTIC"))
def test_logistic(case):
    check(*case)


@SETTINGS
@given(unary_case("QUANTIZE_FLOAT"))
def test_quantize_float(case):
    check(*case)


@SETTINGS
@given(unary_case("REQUANTIZE"))
def test_requantize(case):
    check(*case)


@SETTINGS
@given(unary_case("DEQUANTIZE"))
def test_dequantize(case):
    check(*case)


@SETTINGS
@given(unary_case("RESHAPE"))
def test_reshape(case):
    check(*case)
