"""Activation-aware filterlet pruning with layer-wise reconstruction."""

from __future__ import annotations

import numpy as np
import pytest

import dtmm
from dtmm.calibrated import _removal_path, conv_patches, layer_inputs
from dtmm.ir import Op

from conftest import data_path


def _direct_conv(x, w, stride, dilation, padding):
    """Real-valued NHWC x OHWI convolution, written out loop by loop."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-wd // sw)
        top = max((oh - 1) * sh + ekh - h, 0) // 2
        left = max((ow - 1) * sw + ekw - wd, 0) // 2
    else:
        oh, ow, top, left = (h - ekh) // sh + 1, (wd - ekw) // sw + 1, 0, 0
    y = np.zeros((n, oh, ow, o))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - top + ky * dh, ox * sw - left + kx * dw
                    if 0 <= iy < h and 0 <= ix < wd:
                        y[:, oy, ox] += x[:, iy, ix] @ w[:, ky, kx].T
    return y


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 2), (2, 1))])
def test_conv_patches_match_a_direct_convolution(padding, stride, dilation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 8, 3))
    w = rng.normal(size=(4, 3, 2, 3))
    op = Op("CONV_2D", [], [], {"stride": stride, "dilation": dilation, "padding": padding})
    patches = conv_patches(x, op, w.shape)
    y = _direct_conv(x, w, stride, dilation, padding)
    np.testing.assert_allclose(patches @ w.reshape(4, -1).T, y.reshape(-1, 4), atol=1e-9)


@pytest.fixture(scope="module")
def resnet8():
    model = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    return model, x[:40], x[40:100]


def _output(model: dtmm.Model, x: np.ndarray) -> np.ndarray:
    out = dtmm.Runtime(dtmm.compile(model)).run(x)
    return (out[0] if isinstance(out, list) else out).astype(np.float64)


def test_layer_inputs_are_the_runtime_activations(resnet8):
    model, cal, _ = resnet8
    first = next(op for op in model.ops if op.type == "CONV_2D")
    acts = layer_inputs(model, cal[:3], [first.inputs[0], model.outputs[0]])
    t = model.tensors[first.inputs[0]]
    np.testing.assert_allclose(
        acts[first.inputs[0]], (cal[:3].astype(np.float32) - t.zero_point[0]) * t.scale[0]
    )
    out_t = model.tensors[model.outputs[0]]
    expected = (_output(model, cal[:3]) - out_t.zero_point[0]) * out_t.scale[0]
    np.testing.assert_allclose(acts[model.outputs[0]], expected, rtol=1e-6)


def test_activation_pruning_keeps_exact_sparsity_and_beats_magnitude(resnet8):
    model, cal, held_out = resnet8
    convs = [op for op in model.ops if op.type == "CONV_2D"]
    layers = {op.name: 0.3 for op in convs if model.tensors[op.inputs[1]].shape[1] == 3}
    ours = dtmm.prune.filterlets(model, layers, criterion="activation", calibration=cal)
    magnitude = dtmm.prune.filterlets(model, layers)
    for op in convs:
        w = ours.tensors[op.inputs[1]].data
        o, kh, kw, _ = w.shape
        zero = ~(w != 0).any(axis=3)
        if op.name in layers:
            assert zero.sum() >= round(0.3 * o * kh * kw)
        else:
            np.testing.assert_array_equal(w, model.tensors[op.inputs[1]].data)
    dense = _output(model, held_out)
    err_ours = np.abs(_output(ours, held_out) - dense).mean()
    err_magnitude = np.abs(_output(magnitude, held_out) - dense).mean()
    assert err_ours < 0.7 * err_magnitude  # on inputs it never saw
    # the refit model stays sparse through compilation, bit-exact between storages
    np.testing.assert_array_equal(
        dtmm.Runtime(dtmm.compile(ours, sparse="always")).run(held_out[:8]),
        dtmm.Runtime(dtmm.compile(ours, sparse="never")).run(held_out[:8]),
    )


def test_layers_already_sparse_enough_are_left_bit_identical(resnet8):
    model, cal, _ = resnet8
    layer = next(op.name for op in model.ops if op.type == "CONV_2D")
    once = dtmm.prune.filterlets(model, {layer: 0.4}, criterion="activation", calibration=cal)
    again = dtmm.prune.filterlets(once, {layer: 0.3}, criterion="activation", calibration=cal)
    for name, t in once.tensors.items():
        if t.data is not None:
            np.testing.assert_array_equal(again.tensors[name].data, t.data, err_msg=name)


def test_activation_criterion_needs_calibration(resnet8):
    model, _, _ = resnet8
    with pytest.raises(ValueError, match="calibration"):
        dtmm.prune.filterlets(model, 0.5, criterion="activation")
    with pytest.raises(ValueError, match="activation"):
        dtmm.prune.filterlets(model, 0.5, calibration=np.zeros((1, 32, 32, 3), np.int8))


def test_obs_removal_costs_are_the_rise_in_refit_error():
    """Each step of a filter's removal path costs exactly what zeroing those
    filterlets and re-optimising the rest of the filter adds to the quadratic
    reconstruction error, and each step removes the cheapest filterlet."""
    rng = np.random.default_rng(0)
    kk, c = 5, 3
    x = np.hstack([rng.normal(size=(300, kk * c)), np.ones((300, 1))])
    h = x.T @ x + 0.1 * np.eye(kk * c + 1)
    w = rng.normal(size=kk * c + 1)

    def refit_error(removed: list[int]) -> float:
        gone = np.zeros(kk * c + 1, bool)
        for t in removed:
            gone[t * c : (t + 1) * c] = True
        d_gone = -w[gone]  # (v - w) on the removed columns, v = 0 there
        h_ff, h_fg = h[np.ix_(~gone, ~gone)], h[np.ix_(~gone, gone)]
        d_free = -np.linalg.solve(h_ff, h_fg @ d_gone)
        d = np.zeros_like(w)
        d[gone], d[~gone] = d_gone, d_free
        return float(d @ h @ d)

    alive = np.ones(kk, bool)
    alive[2] = False  # already pruned: removed first, at no charge
    path = _removal_path(np.linalg.inv(h), w, alive, c)
    assert [t for t, _ in path] != [] and 2 not in [t for t, _ in path]
    removed, total = [2], refit_error([2])
    for t, cost in path:
        options = {u: refit_error(removed + [u]) for u in range(kk) if u not in removed}
        assert t == min(options, key=options.get)
        np.testing.assert_allclose(total + cost, options[t], rtol=1e-9)
        removed.append(t)
        total = options[t]
