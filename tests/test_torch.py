"""dtmm.torch: gradual Taylor pruning in a training loop, export, import."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="dtmm.torch needs PyTorch (pip install .[torch])")
pytest.importorskip("onnxruntime", reason="importing the exported float model needs onnxruntime")
from torch import nn  # noqa: E402

import dtmm  # noqa: E402
from dtmm.torch import Pruner  # noqa: E402


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 6 * 6, 10),
    )


def _train(model: nn.Module, pruner: Pruner, steps: int) -> None:
    rng = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for _ in range(steps):
        x = torch.randn(16, 1, 12, 12, generator=rng)
        y = (x[:, 0, 3:9, 3:9].mean(dim=(1, 2)) > 0).long() * 3
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        pruner.accumulate()
        opt.step()
        pruner.step()


def test_gradual_pruning_reaches_exact_ratios_and_keeps_zeros():
    model = _net()
    pruner = Pruner(
        model, filterlets={"2": 0.5}, filters={"0": 0.25}, blocks=0.5, block=16, end=30, every=5
    )
    _train(model, pruner, 40)  # momentum and weight decay keep pushing pruned weights
    w0, w2, w4 = model[0].weight, model[2].weight, model[4].weight
    dead = w0.abs().sum(dim=(1, 2, 3)) == 0
    assert int(dead.sum()) == 2  # 25% of 8 filters, their bias held at zero too
    assert torch.all(model[0].bias[dead] == 0)
    assert int((w2.abs().sum(dim=1) == 0).sum()) == round(0.5 * 16 * 9)  # filterlets [O,KH,KW]
    assert torch.count_nonzero(w4) == w4.numel()  # not listed: untouched
    fc = model[7].weight.detach().reshape(10, -1, 16)
    assert int((fc.abs().sum(dim=2) == 0).sum()) == round(0.5 * 10 * fc.shape[1])
    assert pruner.sparsity()["2"] == pytest.approx(0.5)


def test_cubic_schedule():
    p = Pruner(_net(), filterlets=0.5, start=10, end=110, every=10)
    values = [p.fraction(s) for s in range(0, 130, 5)]
    assert values[0] == 0.0 and p.fraction(110) == 1.0 and p.fraction(200) == 1.0
    assert values == sorted(values)
    assert p.fraction(60) == pytest.approx(1 - 0.5**3)


def test_taylor_scores_accumulate_weight_times_gradient():
    model = _net()
    pruner = Pruner(model, filterlets=0.5, end=1000)
    x = torch.randn(4, 1, 12, 12)
    model(x).sum().backward()
    pruner.accumulate()
    w = model[2].weight
    layer = next(la for la in pruner.layers if la.name == "2")
    torch.testing.assert_close(layer.score, (w * w.grad).abs())


def test_unknown_module_and_bad_ratio():
    with pytest.raises(KeyError, match="conv9"):
        Pruner(_net(), filterlets={"conv9": 0.5})
    with pytest.raises(ValueError, match="1.5"):
        Pruner(_net(), filterlets=1.5)


def test_export_import_keeps_the_sparsity_and_the_function(tmp_path):
    model = _net()
    pruner = Pruner(model, filterlets=0.5, blocks=0.5, end=20, every=5)
    _train(model, pruner, 25)
    path = str(tmp_path / "net.onnx")
    x = torch.randn(64, 1, 12, 12, generator=torch.Generator().manual_seed(5))
    pruner.export_onnx(path, x[:1])
    imported = dtmm.load(path, calibration=x[:48].numpy())
    convs = [op for op in imported.ops if op.type == "CONV_2D"]
    torch_convs = [model[0], model[2], model[4]]
    for op, m in zip(convs, torch_convs):
        w = imported.tensors[op.inputs[1]].data  # OHWI
        torch_zero = (m.weight.detach().abs().sum(dim=1) == 0).numpy()  # [O, KH, KW]
        np.testing.assert_array_equal(~(w != 0).any(axis=3), torch_zero)
    blob = dtmm.compile(imported)
    assert any(r.storage not in ("dense", "-") for r in dtmm.inspect(blob).layers)
    with torch.no_grad():
        ref = model.eval()(x[48:]).numpy()
    ours = dtmm.Runtime(blob).run(x[48:].numpy().transpose(0, 2, 3, 1))
    ours = ours[0] if isinstance(ours, list) else ours
    assert np.abs(ours - ref).max() < 0.1 * np.abs(ref).max()  # int8 vs float
    assert (ours.argmax(1) == ref.argmax(1)).mean() >= 0.8


def test_float_onnx_becomes_a_trainable_module_with_the_same_function(tmp_path):
    from dtmm.torch import from_onnx

    from conftest import data_path

    path = str(data_path("models", "onnx", "resnet8_fp32_nchw.onnx"))
    net = from_onnx(path).eval()
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = data["x"][:6].astype(np.float32).transpose(0, 3, 1, 2)
    session = __import__("onnxruntime").InferenceSession(path)
    name = session.get_inputs()[0].name
    ref = np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(6)])
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), ref, atol=1e-5)
        # every intermediate, by its ONNX name
        acts = net.activations(torch.from_numpy(x))
    onnx = __import__("onnx")
    add = next(n for n in onnx.load(path).graph.node if n.op_type == "Add")
    assert session.get_outputs()[0].name in acts
    torch.testing.assert_close(acts[add.output[0]], acts[add.input[0]] + acts[add.input[1]])
    assert acts[add.output[0]].shape == (6, 16, 32, 32)  # the first residual block's output
    graph = onnx.load(path).graph.node
    for op in ("Relu", "Add"):
        assert net.outputs_of(op) == [n.output[0] for n in graph if n.op_type == op]
    assert len(net.outputs_of("Relu")) == 7 and net.outputs_of("LSTM") == []
    pruner = Pruner(net, filterlets=0.5)
    assert len(pruner.layers) == 9  # every conv of ResNet-8 is prunable
    # Exported again, only the convs with uneven pads (TF's SAME at stride 2)
    # need a Pad node: the others keep their padding inside the Conv.
    uneven = 0
    for node in onnx.load(path).graph.node:
        pads = next((list(a.ints) for a in node.attribute if a.name == "pads"), [0, 0, 0, 0])
        uneven += node.op_type == "Conv" and pads[:2] != pads[2:]
    out = str(tmp_path / "again.onnx")
    pruner.export_onnx(out, torch.from_numpy(x[:1]))
    assert sum(n.op_type == "Pad" for n in onnx.load(out).graph.node) == uneven == 2
