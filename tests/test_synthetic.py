"""dtmm.synthetic: inputs made from a model by matching its calibration statistics."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="dtmm.synthetic needs PyTorch (pip install .[torch])")
pytest.importorskip("onnx", reason="dtmm.torch.from_onnx needs onnx")

from dtmm.synthetic import synthesize  # noqa: E402
from dtmm.torch import from_onnx  # noqa: E402


def _mismatch(net, x: np.ndarray, cal: np.ndarray) -> float:
    """Mean over convs and channels of |mean difference| / calibration std."""
    with torch.no_grad():
        a, b = net.activations(torch.from_numpy(x)), net.activations(torch.from_numpy(cal))
    convs = [out for _, op, _, out, _, _ in net.nodes if op == "Conv"]
    return float(
        np.mean(
            [
                ((a[c].mean((0, 2, 3)) - b[c].mean((0, 2, 3))).abs() / b[c].std((0, 2, 3))).mean()
                for c in convs
            ]
        )
    )


@pytest.fixture(scope="module")
def resnet8():
    from conftest import data_path

    net = from_onnx(str(data_path("models", "onnx", "resnet8_fp32_nchw.onnx")))
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    return net, data["x"][:50].astype(np.float32).transpose(0, 3, 1, 2)


def test_inputs_match_statistics_and_take_the_classes_in_turn(resnet8):
    net, cal = resnet8
    x = synthesize(net, cal, 20, steps=80, batch=20, progress=False)
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.float32
    lo, hi = cal.min(axis=(0, 2, 3)), cal.max(axis=(0, 2, 3))
    assert (x >= lo[None, :, None, None]).all() and (x <= hi[None, :, None, None]).all()
    with torch.no_grad():
        predicted = net(torch.from_numpy(x)).argmax(1).numpy()
    assert (predicted == np.arange(20) % 10).mean() >= 0.9
    rng = np.random.default_rng(0)
    noise = (
        cal.mean((0, 2, 3), keepdims=True)
        + cal.std((0, 2, 3), keepdims=True) * rng.standard_normal(x.shape)
    ).astype(np.float32)
    # matched statistics: far closer to the calibration's than noise of its pixel statistics
    assert _mismatch(net, x, cal) < 0.5 * _mismatch(net, noise, cal)
    # the parameters are left trainable, as they were
    assert all(p.requires_grad for p in net.parameters())


def test_seeded_and_batched(resnet8):
    net, cal = resnet8
    a = synthesize(net, cal, 5, steps=3, batch=2, seed=1, progress=False)
    b = synthesize(net, cal, 5, steps=3, batch=2, seed=1, progress=False)
    c = synthesize(net, cal, 5, steps=3, batch=2, seed=2, progress=False)
    assert a.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_logit_outputs(tmp_path):
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    path = str(tmp_path / "logits.onnx")
    torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), path, dynamo=False, opset_version=17)
    cal = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    module = from_onnx(path)
    x = synthesize(module, cal, 6, steps=150, batch=6, progress=False)
    with torch.no_grad():
        predicted = module(torch.from_numpy(x)).argmax(1).numpy()
    assert (predicted == np.arange(6) % 3).all()


def test_bad_arguments(resnet8):
    net, cal = resnet8
    with pytest.raises(TypeError, match="OnnxModule"):
        synthesize(torch.nn.Conv2d(3, 3, 1), cal, 4)
    with pytest.raises(ValueError, match=r"NCHW.*\(32, 32, 3\)"):
        synthesize(net, cal[0].transpose(1, 2, 0), 4)
    with pytest.raises(ValueError, match="count"):
        synthesize(net, cal, 0)
