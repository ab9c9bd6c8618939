"""dtmm.distill: a pruned int8 model back in its float graph, distilled from the dense one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="dtmm.distill needs PyTorch (pip install .[torch])")
pytest.importorskip("onnxruntime", reason="quantizing the float ONNX needs onnxruntime")

import dtmm  # noqa: E402
from dtmm import demo  # noqa: E402
from dtmm.distill import distill, load_pruned, soup  # noqa: E402
from dtmm.torch import from_onnx  # noqa: E402


@pytest.fixture(scope="module")
def resnet8():
    from conftest import data_path

    path = str(data_path("models", "onnx", "resnet8_fp32_nchw.onnx"))
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    cal = data["x"][:24].astype(np.float32).transpose(0, 3, 1, 2)
    pruned = dtmm.prune.filterlets(dtmm.load(path, calibration=cal), 0.3)
    return path, cal, pruned


def _convs(module):
    return [module.layers[n[0]].conv for n in module.nodes if n[1] == "Conv"]


def _kl(teacher, student, x: np.ndarray) -> float:
    with torch.no_grad():
        p, q = teacher(torch.from_numpy(x)), student(torch.from_numpy(x))
    return float((p * (torch.log(p.clamp_min(1e-8)) - torch.log(q.clamp_min(1e-8)))).sum(1).mean())


def test_load_pruned_copies_the_dequantized_pruned_weights(resnet8):
    path, _, pruned = resnet8
    student = load_pruned(from_onnx(path), pruned)
    by_initializer = {
        op.inputs[1].removesuffix("_DequantizeLinear_Output"): pruned.tensors[op.inputs[1]]
        for op in pruned.ops
        if op.type == "CONV_2D"
    }
    convs = _convs(student)
    int8 = [by_initializer[n[2][1]] for n in student.nodes if n[1] == "Conv"]
    assert len(convs) == len(int8) == len(by_initializer) == 9
    for conv, w in zip(convs, int8):
        want = w.data.astype(np.float32) * w.scale.astype(np.float32)[:, None, None, None]
        np.testing.assert_array_equal(conv.weight.detach().numpy(), want.transpose(0, 3, 1, 2))
    zero = sum(int((c.weight == 0).all(dim=1).sum()) for c in convs)
    total = sum(c.weight[:, 0].numel() for c in convs)
    assert 0.29 <= zero / total <= 0.31  # the pruned filterlets, as zeros


def test_distill_holds_pruned_filterlets_and_moves_toward_the_teacher(resnet8):
    path, cal, pruned = resnet8
    teacher, student = from_onnx(path), load_pruned(from_onnx(path), pruned)
    before = [(c.weight == 0).all(dim=1) for c in _convs(student)]
    kl_before = _kl(teacher, student, cal)
    losses = distill(student, teacher, [cal[:12], cal[12:]], steps=40, batch=16, progress=False)
    assert len(losses) == 40
    for conv, was_zero in zip(_convs(student), before):
        assert (conv.weight[was_zero.unsqueeze(1).expand_as(conv.weight)] == 0).all()
        assert (conv.weight.detach().abs().sum(dim=1)[~was_zero] > 0).all()  # kept ones train
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert _kl(teacher, student, cal) < 0.7 * kl_before
    assert not student.training


def test_distill_and_load_pruned_reject_bad_arguments(resnet8):
    path, cal, pruned = resnet8
    teacher, student = from_onnx(path), from_onnx(path)
    with pytest.raises(TypeError, match="student must be a dtmm.torch.OnnxModule"):
        distill(torch.nn.Linear(2, 2), teacher, [cal])
    with pytest.raises(ValueError, match="inputs is empty"):
        distill(student, teacher, [])
    with pytest.raises(ValueError, match=r"inputs\[1\] must be non-empty NCHW"):
        distill(student, teacher, [cal, cal[:, :, :16]])
    with pytest.raises(ValueError, match="feature 'nope' is not a tensor"):
        distill(student, teacher, [cal], features=["nope"])
    with pytest.raises(ValueError, match="steps and batch must be >= 1"):
        distill(student, teacher, [cal], steps=0)
    other = dtmm.load(demo.bundled_model())
    with pytest.raises(ValueError, match="no CONV_2D with the weights of Conv initializer"):
        load_pruned(student, other)


def _kept(conv) -> torch.Tensor:
    return (conv.weight.detach() != 0).any(dim=1)


def test_soup_is_the_mean_of_students_with_their_pruned_filterlets_kept(resnet8):
    path, cal, pruned = resnet8
    teacher = from_onnx(path)
    a, b = load_pruned(from_onnx(path), pruned), load_pruned(from_onnx(path), pruned)
    distill(a, teacher, [cal], steps=4, batch=8, seed=0, progress=False)
    distill(b, teacher, [cal], steps=4, batch=8, seed=1, progress=False)
    before = [c.weight.detach().clone() for c in _convs(a)]
    mean = soup([a, b])
    assert mean is not a and not mean.training
    differ = 0
    for ca, cb, cm, was in zip(_convs(a), _convs(b), _convs(mean), before):
        wa, wb = ca.weight.detach(), cb.weight.detach()
        differ += int((wa != wb).sum())
        np.testing.assert_allclose(cm.weight.detach(), (wa + wb) / 2, rtol=0, atol=1e-7)
        assert torch.equal(_kept(cm), _kept(ca))  # the pruned filterlets stay exactly zero
        assert torch.equal(wa, was)  # the students are left as they were
    assert differ > 0  # the seeds trained the two apart
    with torch.no_grad():
        x = torch.from_numpy(cal[:4])
        np.testing.assert_allclose(mean(x).numpy(), soup([mean])(x).numpy(), rtol=0, atol=0)


def test_soup_rejects_students_that_differ(resnet8):
    path, _, pruned = resnet8
    a, b = load_pruned(from_onnx(path), pruned), load_pruned(from_onnx(path), pruned)
    conv = _convs(b)[2]
    o, _, ky, kx = (conv.weight != 0).nonzero()[0].tolist()
    with torch.no_grad():
        conv.weight[o, :, ky, kx] = 0
    with pytest.raises(
        ValueError,
        match=r"students\[1\] and students\[0\] have different filterlets "
        r"pruned in Conv '.+' \(1 differ\)",
    ):
        soup([a, b])
    with pytest.raises(ValueError, match="students is empty"):
        soup([])
    with pytest.raises(TypeError, match=r"students\[1\] must be a dtmm.torch.OnnxModule"):
        soup([a, torch.nn.Linear(2, 2)])
