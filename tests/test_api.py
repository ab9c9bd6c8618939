"""The Python surface: loading, compiling, running, and the errors users see."""

from __future__ import annotations

import re

import numpy as np
import pytest

import dtmm
from dtmm import demo


@pytest.fixture(scope="module")
def runtime() -> dtmm.Runtime:
    return dtmm.Runtime(dtmm.compile(dtmm.load(demo.bundled_model())))


def test_version_is_single_sourced():
    from importlib.metadata import version

    assert dtmm.__version__ == version("dtmm")
    assert re.match(r"^\d+\.\d+\.\d+", dtmm.__version__)


def test_load_from_path_and_bytes_agree():
    path = demo.bundled_model()
    a, b = dtmm.load(path), dtmm.load(path.read_bytes())
    assert (
        [op.type for op in a.ops]
        == [op.type for op in b.ops]
        == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    )
    assert dtmm.compile(a) == dtmm.compile(b)


def test_model_ir_exposes_weights_and_quantization():
    m = dtmm.load(demo.bundled_model())
    w = m.tensors[m.ops[0].inputs[1]]
    assert w.is_constant and w.data.dtype == np.int8 and w.data.shape == (32, 64)
    assert len(w.scale) == 32 and np.all(w.zero_point == 0)


def test_io_description(runtime):
    (inp,), (out,) = runtime.inputs, runtime.outputs
    assert inp.shape == (1, 64) and inp.dtype == np.int8
    assert inp.scale == pytest.approx(16 / 255) and inp.zero_point == -128
    assert out.shape == (1, 10) and out.scale == pytest.approx(1 / 256) and out.zero_point == -128
    assert runtime.arena_size > 0


def test_batch_and_unbatched_inputs(runtime):
    rng = np.random.default_rng(0)
    xs = rng.integers(-128, 128, size=(5, 64)).astype(np.int8)
    batch = runtime.run(xs)
    assert batch.shape == (5, 10)
    for i in range(5):
        np.testing.assert_array_equal(runtime.run(xs[i]), batch[i : i + 1])
        np.testing.assert_array_equal(runtime.run(xs[i : i + 1]), batch[i : i + 1])


def test_wrong_dtype_names_expected_and_actual(runtime):
    with pytest.raises(ValueError, match=r"expected dtype int8, got float32"):
        runtime.run(np.zeros((1, 64), np.float32))


def test_wrong_shape_names_expected_and_actual(runtime):
    with pytest.raises(ValueError, match=r"expected shape \(1, 64\).*got \(1, 63\)"):
        runtime.run(np.zeros((1, 63), np.int8))


def test_runtime_rejects_non_bytes():
    with pytest.raises(TypeError, match="bytes"):
        dtmm.Runtime("not a blob")


def test_profile_lists_every_op(runtime):
    prof = runtime.profile(repeats=3)
    assert [p.type for p in prof] == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    assert all(p.seconds >= 0 for p in prof)


def test_unsupported_op_names_op_and_node():
    tw = pytest.importorskip("tflite_writer")
    g = tw.Graph()
    x = g.tensor((1, 4), scale=0.1)
    y = g.tensor((1, 4), scale=0.1)
    g.op(tw.OP.TANH, [x], [y])
    with pytest.raises(dtmm.UnsupportedOpError, match=r"TANH.*'t2'"):
        dtmm.load(g.build([x], [y]))


def test_not_a_tflite_file():
    with pytest.raises(dtmm.ModelError, match="not a TFLite flatbuffer"):
        dtmm.load(b"definitely not a model")
    with pytest.raises(FileNotFoundError):
        dtmm.load("/nonexistent/model.tflite")


def test_unknown_compile_option():
    with pytest.raises(TypeError, match="bogus"):
        dtmm.compile(dtmm.load(demo.bundled_model()), bogus=1)


def test_demo_reaches_trained_accuracy(capsys):
    pytest.importorskip("sklearn")
    accuracy = demo.run()
    assert accuracy is not None and accuracy > 0.85
    assert "accuracy" in capsys.readouterr().out


def _two_op_builder(offset_b: int):
    """x -(QUANTIZE)-> a -(QUANTIZE)-> b with b placed at ``offset_b``."""
    from dtmm import _core

    b = _core.BlobBuilder()
    x = b.add_activation("x", _core.INT8, [16], 0.1, 0, 0)
    a = b.add_activation("a", _core.INT8, [16], 0.2, 0, 16)
    y = b.add_activation("b", _core.INT8, [16], 0.4, 0, offset_b)
    b.add_op(_core.OP_TYPES["QUANTIZE"], [x], [a], _core.OpOptions(), "q1")
    b.add_op(_core.OP_TYPES["QUANTIZE"], [a], [y], _core.OpOptions(), "q2")
    b.set_io([x], [y])
    return b.finish(48 if offset_b == 32 else 32)


def test_loader_accepts_a_sound_plan_and_rejects_live_overlap():
    rt = dtmm.Runtime(_two_op_builder(32))
    np.testing.assert_array_equal(rt.run(np.array([40] * 16, np.int8)), np.full(16, 10, np.int8))
    # b reuses x's bytes: fine, x is dead once q1 has run.
    dtmm.Runtime(_two_op_builder(0))
    # b on top of a, which q2 is still reading: the loader must refuse.
    with pytest.raises(ValueError, match="DTMM_ERR_BAD_MEMORY_PLAN"):
        dtmm.Runtime(_two_op_builder(16))
