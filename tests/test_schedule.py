"""dtmm.schedule: budgets met or refused with the shortfall; the DP search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dtmm
from dtmm import latency
from dtmm.scheduler import Option, _Cost, _Evaluator, _Table, search_anneal, search_dp

from conftest import data_path


@pytest.fixture(scope="module")
def resnet8():
    model = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    data = np.load(data_path("eval", "ic01_cifar10_test200.npz"))
    x = (data["x"][:40].astype(np.int16) - 128).astype(np.int8)
    return model, x


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    """A small CNN trained briefly on scikit-learn's digits, exported from
    PyTorch and imported as int8: over-parameterised, so pruning has room."""
    torch = pytest.importorskip("torch", reason="the test model is trained with PyTorch")
    pytest.importorskip("onnxruntime", reason="importing a float ONNX model needs onnxruntime")
    from sklearn.datasets import load_digits
    from torch import nn

    from dtmm.torch import Pruner

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        i = rng.integers(0, 1000, 64)
        loss = nn.functional.cross_entropy(net(torch.from_numpy(x[i])), torch.from_numpy(y[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("digits") / "cnn.onnx"
    Pruner(net).export_onnx(str(path), torch.from_numpy(x[:1]))
    model = dtmm.load(path, calibration=x[:200])
    nhwc = x.transpose(0, 2, 3, 1)
    return model, nhwc[1000:1500], y[1000:1500], nhwc[1500:], y[1500:]


def _accuracy(blob: bytes, x: np.ndarray, y: np.ndarray) -> float:
    out = dtmm.Runtime(blob).run(x)
    return float(((out[0] if isinstance(out, list) else out).argmax(1) == y).mean())


def test_schedule_meets_flash_and_accuracy_budgets(digits_cnn):
    model, x_cal, y_cal, x_test, y_test = digits_cnn
    dense_blob = dtmm.compile(model)
    flash = int(0.75 * len(dense_blob))
    result = dtmm.schedule(
        model,
        flash=flash,
        calibration=(x_cal, y_cal),
        max_accuracy_drop=0.05,
        progress=False,
    )
    report = result.report
    blob = dtmm.compile(result.model)  # "auto" keeps the storage the scheduler chose
    assert len(blob) == report.blob_bytes <= flash
    assert report.dense_blob_bytes == len(dense_blob)
    assert report.dense_accuracy - report.accuracy <= 0.05
    assert report.metric == "accuracy"
    assert report.instructions == pytest.approx(
        sum(r.instructions for r in latency.predict(result.model))
    )
    # held-out digits the scheduler never saw
    assert _accuracy(blob, x_test, y_test) >= _accuracy(dense_blob, x_test, y_test) - 0.08
    for r in report.layers:  # what the report says per layer is what the model holds
        op = next(o for o in result.model.ops if o.name == r.name)
        dead = ~(result.model.tensors[op.inputs[1]].data != 0).any(axis=3)
        assert dead.mean() >= r.filterlets - 0.5 / dead.size  # rounded to whole filterlets
    assert "filterlets" in str(report)


def test_zero_accuracy_drop_without_flash_budget_is_always_met(digits_cnn):
    """With no flash or SRAM limit the unpruned model meets any accuracy
    budget, even when every pruning option together costs too much."""
    model, x_cal, y_cal, _, _ = digits_cnn
    result = dtmm.schedule(model, calibration=(x_cal, y_cal), max_accuracy_drop=0.0, progress=False)
    assert result.report.accuracy >= result.report.dense_accuracy


def _half_flash_for_accuracy(digits_cnn, **options):
    """The accuracy objective (l2 criterion) at half the dense blob's bytes."""
    model, x_cal, y_cal, _, _ = digits_cnn
    flash = int(0.5 * len(dtmm.compile(model)))
    result = dtmm.schedule(
        model,
        flash=flash,
        calibration=(x_cal, y_cal),
        criterion="l2",
        objective="accuracy",
        progress=False,
        **options,
    )
    return model, flash, result


def test_accuracy_objective_returns_the_least_lossy_schedule_that_fits(digits_cnn):
    model, flash, result = _half_flash_for_accuracy(
        digits_cnn, method="greedy", max_accuracy_drop=0.0
    )
    x_cal = digits_cnn[1]
    assert result.report.method == "greedy"
    assert result.report.blob_bytes <= flash
    with pytest.raises(ValueError, match="objective"):
        dtmm.schedule(model, calibration=x_cal, objective="size")


def test_layer_adaptive_schedule_prunes_the_least_that_fits(digits_cnn):
    _, x_cal, y_cal, _, _ = digits_cnn
    model, flash, result = _half_flash_for_accuracy(digits_cnn)  # "layer-adaptive" by default
    report = result.report
    assert report.method == "layer-adaptive"
    assert len(dtmm.compile(result.model)) == report.blob_bytes <= flash
    sizes = {}
    for r in report.layers:
        op = next(o for o in result.model.ops if o.name == r.name)
        dead = ~(result.model.tensors[op.inputs[1]].data != 0).any(axis=3)
        assert r.filters == 0.0 and r.filterlets == dead.sum() / dead.size
        sizes[r.name] = dead.size
    removed = round(sum(r.filterlets * sizes[r.name] for r in report.layers))
    total = sum(sizes.values())
    assert report.layers[0].filterlets != report.layers[-1].filterlets  # not uniform
    # one filterlet less does not fit
    fewer = dtmm.prune.filterlets(model, (removed - 1) / total, allocation="layer-adaptive")
    assert len(dtmm.compile(fewer)) > flash
    # the activation-aware choice (OBS + refit) within the same shares
    refit = dtmm.schedule(
        model, flash=flash, calibration=(x_cal, y_cal), objective="accuracy", progress=False
    )
    assert len(dtmm.compile(refit.model)) == refit.report.blob_bytes <= flash
    assert all(a.filterlets >= b.filterlets for a, b in zip(refit.report.layers, report.layers))
    with pytest.raises(dtmm.BudgetError, match=r"SRAM: .* prunes filterlets only"):
        dtmm.schedule(
            model,
            sram=100,
            calibration=(x_cal, y_cal),
            objective="accuracy",
            method="layer-adaptive",
            progress=False,
        )
    with pytest.raises(ValueError, match="'layer-adaptive' or 'greedy'"):
        dtmm.schedule(model, calibration=x_cal, objective="accuracy", method="dp")


def test_unreachable_budgets_say_which_and_by_how_much(resnet8):
    model, x = resnet8
    with pytest.raises(dtmm.BudgetError, match=r"flash: .* B over the 1,000 B budget"):
        dtmm.schedule(model, flash=1000, calibration=(x, None), progress=False)
    # ResNet-8's largest activations are joined by residual ADDs: no filter can go
    with pytest.raises(dtmm.BudgetError, match=r"SRAM: .* over the 20,000 B budget"):
        dtmm.schedule(model, sram=20_000, calibration=(x, None), progress=False)


def test_bad_arguments(resnet8):
    model, x = resnet8
    with pytest.raises(ValueError, match="calibration"):
        dtmm.schedule(model, flash=50_000)
    with pytest.raises(ValueError, match="method"):
        dtmm.schedule(model, calibration=x, method="greedy")
    with pytest.raises(ValueError, match="labels"):
        dtmm.schedule(model, calibration=(x, np.zeros(3, int)))


def _random_table(rng: np.random.Generator, layers: int, options: int) -> _Table:
    costs = []
    for _ in range(layers):
        row = [_Cost(1000.0, 500.0, 0.0, 0.0)]
        for k in range(1, options):
            row.append(
                _Cost(
                    1000.0 - 80 * k + rng.uniform(-40, 40),
                    500.0 - 45 * k + rng.uniform(-20, 20),
                    0.0,
                    0.01 * k**1.5 * rng.uniform(0.3, 3.0),
                )
            )
        costs.append(row)
    return _Table(
        [f"l{i}" for i in range(layers)],
        [[Option(0.1 * k) for k in range(options)]] * layers,
        costs,
    )


def test_dp_finds_the_optimum_and_annealing_does_not_beat_it():
    rng = np.random.default_rng(3)
    for trial in range(5):
        table = _random_table(rng, 4, 5)
        loss_budget, bytes_budget = 0.15, 1600.0
        best = None
        for pick in itertools.product(range(5), repeat=4):
            instr, wbytes, _, loss = table.totals(list(pick))
            if loss <= loss_budget and wbytes <= bytes_budget and (best is None or instr < best):
                best = instr
        dp = search_dp(table, loss_budget, bytes_budget, bins=2000)
        anneal = search_anneal(table, loss_budget, bytes_budget, seed=trial)
        if best is None:
            assert dp is None
            continue
        instr, wbytes, _, loss = table.totals(dp)
        assert wbytes <= bytes_budget and loss <= loss_budget + 1e-9
        # the byte budget is relaxed by a multiplier, so DP may miss the exact
        # optimum by a little, never by more than one option step
        assert instr <= best + 120
        if anneal is not None:
            assert table.totals(anneal)[0] >= instr - 120


def test_annealing_is_deterministic_given_a_seed():
    table = _random_table(np.random.default_rng(7), 6, 6)
    runs = [search_anneal(table, 0.2, 2400.0, seed=11, steps=3000) for _ in range(2)]
    assert runs[0] is not None and runs[0] == runs[1]


def test_accuracy_drop_counts_two_standard_errors_of_the_changes():
    """The drop a schedule must stay within is the measured drop plus
    2 sqrt(changed outcomes) / n: many candidates tried on few samples would
    otherwise pass by luck."""
    ev = _Evaluator.__new__(_Evaluator)
    n = 20
    labels = np.arange(n) % 3
    dense = np.full((n, 3), 0.1)
    dense[np.arange(n), labels] = 0.8
    dense[:2] = [0.8, 0.1, 0.1]  # samples 0 and 1: label 0 and 1, dense wrong on 1
    ev.dense, ev.labels = dense, labels
    pruned = dense.copy()
    pruned[1] = [0.1, 0.8, 0.1]  # gained: now right
    for i in (3, 4, 5):  # lost: labels 0, 1, 2, now predicted (label + 1) % 3
        pruned[i] = np.roll(dense[i], 1)
    assert ev.score(pruned) - ev.score(dense) == pytest.approx(-2 / n)
    assert ev.drop(pruned) == pytest.approx((3 - 1 + 2 * np.sqrt(4)) / n)
    assert ev.drop(dense) == 0.0
    ev.labels = None  # agreement with the dense model: every change is a loss
    assert ev.drop(pruned) == pytest.approx((4 + 2 * np.sqrt(4)) / n)
