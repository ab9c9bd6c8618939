"""Sparse storage: encoders, the loader's checks of sparse data, pruning,
inspection, and pruned real models against TFLite Micro."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dtmm
from dtmm import demo, latency, sparse_formats
from dtmm.graph_passes import as_compiled, remove_dead_filters

from conftest import data_path, quantized_tensor, tflm_run

# ---- encoders


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.int8, hnp.array_shapes(min_dims=4, max_dims=4, max_side=6)),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_fwcs_round_trip(weights, pruned, seed):
    rng = np.random.default_rng(seed)
    weights = weights.copy()
    weights[rng.random(weights.shape[:3]) < pruned] = 0
    enc = sparse_formats.fwcs_encode(weights)
    np.testing.assert_array_equal(sparse_formats.fwcs_decode(enc), weights)
    kept = sparse_formats.filterlet_mask(weights)
    assert enc.kept == int(kept.sum())
    assert enc.index_bytes == -(-kept.size // 8)  # one bit per filterlet


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.int8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40)), st.integers(1, 17)
)
def test_block_and_csr_round_trip(weights, block):
    units, depth = weights.shape
    values, mask = sparse_formats.block_encode(weights, block)
    np.testing.assert_array_equal(
        sparse_formats.block_decode(values, mask, units, depth, block), weights
    )
    v, c, p = sparse_formats.csr_encode(weights)
    np.testing.assert_array_equal(sparse_formats.csr_decode(v, c, p, depth), weights)


def test_fwcs_index_overhead_formula():
    # 64 filters of 3x3x16 at 50% density: 576 mask bits = 72 bytes vs 4,608 value bytes.
    w = np.ones((64, 3, 3, 16), np.int8)
    w[:, ::2, :, :] = 0
    w[:, 1, 1::2, :] = 0
    enc = sparse_formats.fwcs_encode(w)
    assert enc.index_bytes == 72
    assert enc.index_bytes / enc.values.nbytes == pytest.approx(1 / (8 * (enc.kept / 576) * 16))


# ---- the loader's checks of FWCS data


def _fwcs_blob(out_channels: int = 8) -> tuple[bytes, dict]:
    tw = pytest.importorskip("tflite_writer", reason="needs tflite-micro (pip install .[test])")
    rng = np.random.default_rng(3)
    g = tw.Graph()
    x = g.tensor((1, 6, 6, 16), scale=0.05, zero_point=3)
    w = rng.integers(-127, 128, size=(out_channels, 3, 3, 16), dtype=np.int8)
    w[rng.random((out_channels, 3, 3)) < 0.5] = 0
    f = g.tensor(w.shape, scale=[0.01] * out_channels, zero_point=0, axis=0, data=w)
    y = g.tensor((1, 6, 6, out_channels), scale=0.5, zero_point=-2)
    g.op(
        tw.OP.CONV_2D,
        [x, f],
        [y],
        *tw.options("Conv2DOptions", padding=tw.PAD["SAME"], strideH=1, strideW=1),
    )
    blob = dtmm.compile(dtmm.load(g.build([x], [y])), sparse="always", debug_info=True)
    core = dtmm._core.Interpreter(blob, False, False)
    tensors = core.tensors()
    mask = next(t for t in tensors if t["name"].endswith("/mask"))
    values = next(t for t in tensors if t["name"].endswith("/values"))
    return blob, {"mask": mask, "values": values, "kept": int((np.any(w != 0, axis=3)).sum())}


def _resealed(blob: bytearray) -> bytes:
    blob[12:16] = (zlib.crc32(bytes(blob[16:])) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(blob)


def test_loader_rejects_mask_that_disagrees_with_values():
    blob, info = _fwcs_blob()
    mask = info["mask"]
    bad = bytearray(blob)
    # Flip a zero bit to one: the mask now counts one filterlet more than stored.
    data = np.frombuffer(blob, np.uint8, count=mask["bytes"], offset=mask["offset"])
    byte = int(np.flatnonzero(data != 0xFF)[0])
    free_bit = int(np.flatnonzero(np.unpackbits(data[byte : byte + 1], bitorder="little") == 0)[0])
    bad[mask["offset"] + byte] |= 1 << free_bit
    with pytest.raises(ValueError, match="DTMM_ERR_BAD_PARAMS"):
        dtmm.Runtime(_resealed(bad))


def test_loader_rejects_stray_mask_bits():
    blob, info = _fwcs_blob(out_channels=7)  # 63 filterlets: the mask's last bit is unused
    mask = info["mask"]
    bad = bytearray(blob)
    bad[mask["offset"] + mask["bytes"] - 1] |= 0x80
    with pytest.raises(ValueError, match="DTMM_ERR_BAD_PARAMS"):
        dtmm.Runtime(_resealed(bad))


def test_loader_rejects_values_of_wrong_width():
    blob, info = _fwcs_blob()
    core = dtmm._core.Interpreter(blob, False, False)
    index = next(i for i, t in enumerate(core.tensors()) if t["name"].endswith("/values"))
    tensors_offset = int.from_bytes(blob[24:28], "little")
    record = tensors_offset + index * 64
    bad = bytearray(blob)
    # values [kept, 16] reinterpreted as [2 * kept, 8]: same bytes, wrong C_in.
    bad[record + 4 : record + 8] = (2 * info["kept"]).to_bytes(4, "little")
    bad[record + 8 : record + 12] = (8).to_bytes(4, "little")
    with pytest.raises(ValueError, match="DTMM_ERR_BAD_PARAMS"):
        dtmm.Runtime(_resealed(bad))


# ---- pruning


def test_filterlet_pruning_removes_exact_fraction_per_layer():
    m = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    pruned = dtmm.prune.filterlets(m, 0.3)
    for op in pruned.ops:
        if op.type == "CONV_2D":
            w = pruned.tensors[op.inputs[1]].data
            kept = np.any(w != 0, axis=3)
            assert abs(kept.mean() - 0.7) <= 1 / kept.size + 1e-9
    # The original model is untouched.
    assert all(
        np.any(m.tensors[op.inputs[1]].data != 0, axis=3).all()
        for op in m.ops
        if op.type == "CONV_2D"
    )


def test_layer_adaptive_allocation_removes_the_lowest_lamp_scores_model_wide():
    m = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    convs = [op for op in m.ops if op.type == "CONV_2D"]
    # LAMP scores from the definition, filterlet by filterlet
    scores = {}
    for op in convs:
        w = m.tensors[op.inputs[1]]
        real = w.data.astype(np.float64) * w.scale.astype(np.float64)[:, None, None, None]
        norms = (real**2).sum(axis=3).ravel()
        scores[op.name] = [n / norms[norms >= n].sum() for n in norms]
    total = sum(len(v) for v in scores.values())
    every = sorted(x for v in scores.values() for x in v)
    for sparsity in (0.3, 0.95):
        ratios = dtmm.prune.layer_adaptive(m, sparsity)
        assert set(ratios) == {op.name for op in convs}
        removed = {n: round(r * len(scores[n])) for n, r in ratios.items()}
        assert sum(removed.values()) == round(sparsity * total)
        cut = every[round(sparsity * total) - 1]
        for name, sc in scores.items():
            assert removed[name] == sum(x <= cut for x in sc)
            assert removed[name] < len(sc)  # no layer emptied
        pruned = dtmm.prune.filterlets(m, sparsity, allocation="layer-adaptive")
        for op in pruned.ops:
            if op.type == "CONV_2D":
                dead = ~np.any(pruned.tensors[op.inputs[1]].data != 0, axis=3)
                assert dead.sum() == removed[op.name]
    # the 1x1 shortcut with the fewest filterlets (32) keeps more than a
    # uniform 30% would leave, the 64-channel 3x3 convs lose more
    ratios = dtmm.prune.layer_adaptive(m, 0.3)
    fewest = min(convs, key=lambda op: len(scores[op.name]))
    assert ratios[fewest.name] < 0.3 < ratios[convs[-2].name]
    with pytest.raises(ValueError, match="one model-wide sparsity"):
        dtmm.prune.filterlets(m, {convs[0].name: 0.5}, allocation="layer-adaptive")
    with pytest.raises(ValueError, match="allocation must be"):
        dtmm.prune.filterlets(m, 0.5, allocation="global")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dtmm.prune.layer_adaptive(m, -0.1)


def test_per_layer_pruning_and_unknown_layer():
    m = dtmm.load(demo.bundled_model())
    name = m.ops[0].name
    pruned = dtmm.prune.fc_blocks(m, {name: 0.5}, block=16)
    w0 = pruned.tensors[pruned.ops[0].inputs[1]].data
    blocks = np.any(w0.reshape(32, 4, 16) != 0, axis=2)
    assert blocks.sum() == 64
    np.testing.assert_array_equal(
        pruned.tensors[pruned.ops[1].inputs[1]].data, m.tensors[m.ops[1].inputs[1]].data
    )
    with pytest.raises(KeyError, match="no op named"):
        dtmm.prune.filterlets(m, {"nope": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dtmm.prune.fc_blocks(m, 1.5)


@pytest.mark.parametrize(
    "use", [dtmm.compile, dtmm.plan_memory, latency.predict], ids=["compile", "plan", "predict"]
)
def test_every_mode_taker_rejects_unknown_sparse_modes_and_layers(use):
    model = dtmm.load(demo.bundled_model())
    with pytest.raises(ValueError, match="sparse must be one of .* got 'sometimes'"):
        use(model, sparse="sometimes")
    with pytest.raises(ValueError, match="got 'sometimes'"):
        use(model, sparse={model.ops[0].name: "sometimes"})
    with pytest.raises(KeyError, match="'nope', which is not an op"):
        use(model, sparse={"nope": "never"})
    use(model, sparse={})  # every layer "auto"


# ---- real models: pruned, every storage, equal to TFLite Micro on the same zeros


def _zeroed_tflite(model_bytes: bytes, pruned: dtmm.Model) -> bytes:
    """The original .tflite with the pruned weights written back as zeros."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me

    tfl = me.read(model_bytes)
    sg = tfl.subgraphs[0]
    by_name = {t.name: t for t in sg.tensors}
    for op in pruned.ops:
        if op.type in ("CONV_2D", "FULLY_CONNECTED"):
            t = pruned.tensors[op.inputs[1]]
            by_name[t.name].buffer.data = np.ascontiguousarray(t.data).tobytes()
    return bytes(tfl.build())


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_pruned_resnet8_every_storage_matches_tflm(sparsity):
    pytest.importorskip("tflite_micro")
    path = data_path("models", "resnet8", "resnet8_int8.tflite")
    ev = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = (ev["x"][:12].astype(np.int16) - 128).astype(np.int8)
    pruned = dtmm.prune.fc_blocks(dtmm.prune.filterlets(dtmm.load(path), sparsity), sparsity)
    oracle = _zeroed_tflite(path.read_bytes(), pruned)
    expected = np.concatenate([tflm_run(oracle, [xi[None]])[0] for xi in x])
    sizes = {}
    for mode in ("never", "always", "auto", "csr"):
        blob = dtmm.compile(pruned, sparse=mode)
        sizes[mode] = len(blob)
        for reference in (False, True):
            np.testing.assert_array_equal(dtmm.Runtime(blob, reference=reference).run(x), expected)
    assert sizes["always"] < sizes["never"]
    report = dtmm.inspect(dtmm.compile(pruned, sparse="always"))
    dense = dtmm.inspect(dtmm.compile(dtmm.load(path), sparse="never"))
    assert any(layer.storage == "FWCS" for layer in report.layers)
    # Only kept filterlets are stored (dead filters may also be removed outright).
    assert report.value_bytes <= (1 - sparsity) * dense.value_bytes + 16


def _int8_constant_bytes(model: dtmm.Model) -> int:
    return sum(
        t.data.size for t in model.tensors.values() if t.is_constant and t.data.dtype == np.int8
    )


def test_inspect_accounts_for_every_weight():
    original = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    dense = dtmm.inspect(dtmm.compile(original, sparse="never"))
    assert dense.value_bytes == _int8_constant_bytes(original) and dense.index_bytes == 0
    pruned = dtmm.prune.filterlets(original, 0.5)
    # At 50% some filters lose every filterlet: compile removes them (and the
    # matching input channels downstream) where exact, shrinking the dense blob too.
    alive = remove_dead_filters(pruned, sparse="never")
    assert _int8_constant_bytes(alive) < _int8_constant_bytes(pruned)
    assert dtmm.inspect(dtmm.compile(pruned, sparse="never")).value_bytes == _int8_constant_bytes(
        alive
    )
    sparse = dtmm.inspect(dtmm.compile(pruned, sparse="always"))
    assert sparse.value_bytes < 0.55 * dense.value_bytes and sparse.index_bytes > 0
    assert "FWCS" in str(sparse)


def _assert_outputs_unchanged(model: dtmm.Model, x: np.ndarray, sparse: str = "auto"):
    """``model`` compiled under ``sparse`` gives the outputs of the same model
    with "y1" (the dead filters' tensor) also an output, which keeps every
    channel: the unrewritten computation. Returns the model's Runtime."""
    keep_all = dtmm.Model(model.tensors, model.ops, model.inputs, [*model.outputs, "y1"])
    expected = dtmm.Runtime(dtmm.compile(keep_all, sparse="never")).run(x)[0]
    runtime = dtmm.Runtime(dtmm.compile(model, sparse=sparse))
    np.testing.assert_array_equal(runtime.run(x), expected)
    return runtime


def test_dead_filters_are_removed_through_a_zero_point_pad():
    """conv -> PAD (ONNX-style explicit padding) -> VALID conv: filters that
    output the zero point vanish from all three, with identical outputs."""
    rng = np.random.default_rng(4)
    w1 = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    w1[[1, 4, 6]] = 0
    b1 = rng.integers(-500, 500, 8).astype(np.int32)
    b1[[1, 4, 6]] = 0  # a dead filter with no bias outputs the zero point through RELU
    w2 = rng.integers(-127, 128, (5, 3, 3, 8)).astype(np.int8)
    tensors = {
        "x": quantized_tensor("x", (1, 9, 9, 3), 0.05, -3),
        "w1": quantized_tensor("w1", w1.shape, np.full(8, 0.01), 0, w1),
        "b1": quantized_tensor("b1", (8,), np.full(8, 0.0005), 0, b1, np.int32),
        "y1": quantized_tensor("y1", (1, 9, 9, 8), 0.2, -128),
        "p": quantized_tensor("p", (1, 11, 11, 8), 0.2, -128),
        "w2": quantized_tensor("w2", w2.shape, np.full(5, 0.01), 0, w2),
        "b2": quantized_tensor("b2", (5,), np.full(5, 0.002), 0, np.zeros(5, np.int32), np.int32),
        "y2": quantized_tensor("y2", (1, 9, 9, 5), 0.3, 2),
    }
    conv = {"stride": (1, 1), "dilation": (1, 1), "activation": "RELU"}
    ops = [
        dtmm.Op("CONV_2D", ["x", "w1", "b1"], ["y1"], {**conv, "padding": "SAME"}, "c1"),
        dtmm.Op("PAD", ["y1"], ["p"], {"pads": [(0, 0), (1, 1), (1, 1), (0, 0)]}, "pad"),
        dtmm.Op("CONV_2D", ["p", "w2", "b2"], ["y2"], {**conv, "padding": "VALID"}, "c2"),
    ]
    model = dtmm.Model(tensors, ops, ["x"], ["y2"])
    from dtmm.graph_passes import remove_dead_filters

    slim = remove_dead_filters(model)
    assert slim.tensors["y1"].shape[-1] == 5 and slim.tensors["p"].shape[-1] == 5
    assert slim.tensors["w2"].shape == (5, 3, 3, 5)
    _assert_outputs_unchanged(model, rng.integers(-128, 128, (6, 9, 9, 3)).astype(np.int8))


@pytest.mark.parametrize(
    ("channels", "n_dead", "bias", "left"),
    [
        (6, 3, 0, 3),  # no multiple of 8 is in reach: every dead channel goes
        (6, 3, 300, 6),
        (16, 3, 0, 16),  # 13 would send the depthwise conv to its slow loop
        (16, 9, 0, 8),
    ],
)
def test_dead_filters_are_removed_through_a_depthwise_conv(channels, n_dead, bias, left):
    """conv -> padded depthwise -> 1x1 conv (MobileNet): a dead filter that
    outputs the zero point takes its depthwise channel (whose padding is the
    zero point too, so it outputs its bias, a constant) and the 1x1 conv's
    input channel with it, as far as that leaves the depth a multiple of 8.
    With a bias the filter's constant differs from the padding and nothing
    may go."""
    rng = np.random.default_rng(7)
    dead = np.sort(rng.choice(channels, n_dead, replace=False))
    w1 = rng.integers(-127, 128, (channels, 3, 3, 2)).astype(np.int8)
    w1[dead] = 0
    b1 = rng.integers(-500, 500, channels).astype(np.int32)
    b1[dead] = bias
    wd = rng.integers(-127, 128, (1, 3, 3, channels)).astype(np.int8)
    bd = rng.integers(-2000, 2000, channels).astype(np.int32)
    w2 = rng.integers(-127, 128, (4, 1, 1, channels)).astype(np.int8)
    b2 = rng.integers(-500, 500, 4).astype(np.int32)
    c = channels
    tensors = {
        "x": quantized_tensor("x", (1, 7, 7, 2), 0.05, -3),
        "w1": quantized_tensor("w1", w1.shape, np.full(c, 0.01), 0, w1),
        "b1": quantized_tensor("b1", (c,), np.full(c, 0.0005), 0, b1, np.int32),
        "y1": quantized_tensor("y1", (1, 7, 7, c), 0.2, -128),
        "wd": quantized_tensor("wd", wd.shape, np.linspace(0.005, 0.02, c), 0, wd),
        "bd": quantized_tensor("bd", (c,), np.full(c, 0.001), 0, bd, np.int32),
        "yd": quantized_tensor("yd", (1, 4, 4, c), 0.1, -128),
        "w2": quantized_tensor("w2", w2.shape, np.full(4, 0.01), 0, w2),
        "b2": quantized_tensor("b2", (4,), np.full(4, 0.001), 0, b2, np.int32),
        "y2": quantized_tensor("y2", (1, 4, 4, 4), 0.3, 2),
    }
    conv = {"dilation": (1, 1), "padding": "SAME", "activation": "RELU"}
    ops = [
        dtmm.Op("CONV_2D", ["x", "w1", "b1"], ["y1"], {**conv, "stride": (1, 1)}, "c1"),
        dtmm.Op(
            "DEPTHWISE_CONV_2D",
            ["y1", "wd", "bd"],
            ["yd"],
            {**conv, "stride": (2, 2), "depth_multiplier": 1, "activation": "RELU6"},
            "dw",
        ),
        dtmm.Op("CONV_2D", ["yd", "w2", "b2"], ["y2"], {**conv, "stride": (1, 1)}, "c2"),
    ]
    model = dtmm.Model(tensors, ops, ["x"], ["y2"])
    slim = remove_dead_filters(model, sparse="never")
    assert slim.tensors["w1"].shape[0] == slim.tensors["y1"].shape[-1] == left
    assert slim.tensors["wd"].shape[-1] == slim.tensors["yd"].shape[-1] == left
    assert len(slim.tensors["wd"].scale) == len(slim.tensors["bd"].data) == left
    assert slim.tensors["w2"].shape == (4, 1, 1, left)
    _assert_outputs_unchanged(model, rng.integers(-128, 128, (6, 7, 7, 2)).astype(np.int8))


@pytest.mark.parametrize(
    ("channels", "dead", "mode", "c_in"),
    [
        (32, 17, "never", 15),
        (32, 17, "always", 16),
        (32, 17, "auto", 16),
        (20, 6, "never", 14),
        (20, 6, "always", 16),
        (20, 3, "always", 17),  # 16 is out of reach: every dead channel goes
    ],
)
def test_dead_channels_leave_fwcs_consumers_whole_vectors(channels, dead, mode, c_in):
    """A dense consumer loses every dead input channel (its bytes); an FWCS one
    as many as leave C_in a multiple of 16 (Helium's fast loop), when some
    number does. Outputs and arena agree with the planner either way."""
    rng = np.random.default_rng(9)
    w1 = rng.integers(-127, 128, (channels, 1, 1, 4)).astype(np.int8)
    dead_ones = rng.permutation(channels)[:dead]
    w1[dead_ones] = 0
    b1 = rng.integers(-500, 500, channels).astype(np.int32)
    b1[dead_ones] = 0  # outputs the zero point through RELU: removable before a padded conv
    w2 = rng.integers(-127, 128, (8, 3, 3, channels)).astype(np.int8)
    w2[rng.random((8, 3, 3)) < 0.6] = 0  # sparse enough for FWCS under "auto"
    tensors = {
        "x": quantized_tensor("x", (1, 6, 6, 4), 0.05, -3),
        "w1": quantized_tensor("w1", w1.shape, np.full(channels, 0.01), 0, w1),
        "b1": quantized_tensor("b1", (channels,), np.full(channels, 0.0005), 0, b1, np.int32),
        "y1": quantized_tensor("y1", (1, 6, 6, channels), 0.2, -128),
        "w2": quantized_tensor("w2", w2.shape, np.full(8, 0.01), 0, w2),
        "b2": quantized_tensor("b2", (8,), np.full(8, 0.002), 0, np.zeros(8, np.int32), np.int32),
        "y2": quantized_tensor("y2", (1, 6, 6, 8), 0.3, 2),
    }
    conv = {"stride": (1, 1), "dilation": (1, 1), "activation": "RELU", "padding": "SAME"}
    ops = [
        dtmm.Op("CONV_2D", ["x", "w1", "b1"], ["y1"], conv, "c1"),
        dtmm.Op("CONV_2D", ["y1", "w2", "b2"], ["y2"], conv, "c2"),
    ]
    model = dtmm.Model(tensors, ops, ["x"], ["y2"])
    slim = as_compiled(model, mode)
    assert slim.tensors["w2"].shape == (8, 3, 3, c_in)
    assert slim.tensors["y1"].shape[-1] == c_in
    x = rng.integers(-128, 128, (5, 6, 6, 4)).astype(np.int8)
    runtime = _assert_outputs_unchanged(model, x, mode)
    assert runtime.arena_size == dtmm.plan_memory(model, mode).arena_size
