"""The Cortex-M55 latency model: its fit, and its predictions against QEMU."""

from __future__ import annotations

import numpy as np
import pytest

import dtmm
from dtmm import device, latency

from conftest import data_path

needs_device = pytest.mark.skipif(
    device.available() is not None, reason=f"device tools: {device.available()}"
)


@pytest.mark.parametrize("key,c_in", [("CONV_2D", (2, 40)), ("CONV_2D/rows", (1, 5))])
def test_fit_recovers_a_known_linear_cost(key, c_in):
    """Layers on the pixel-group loop (C_in off a multiple of 16) and on the
    row loop (C_in = 16 k) each get their own exact fit."""
    rng = np.random.default_rng(0)
    truth = np.array([500.0, 30.0, 2.0, 1.5, 4.0])
    samples = []
    while len(samples) < 40:
        hw, co = (int(v) for v in rng.integers(2, 40, 2))
        ci = int(rng.integers(*c_in)) * (16 if key.endswith("/rows") else 1)
        shape = latency.LayerShape("CONV_2D", hw * hw * ci, hw, hw, ci, co, 3, 3)
        if shape.key != key:
            continue
        feats = shape.features()
        samples.append((shape, float(truth @ feats[: len(truth)] + 0.5 * feats[5])))
    fitted = latency.fit(samples)
    assert set(fitted.coefficients) == {key}
    assert fitted.fit_error[key]["held_out_max_rel"] < 1e-6
    for shape, instr in samples[:5]:
        assert fitted.predict_layer(shape) == pytest.approx(instr, rel=1e-6)


def test_shipped_model_covers_every_kernel_and_reports_its_error():
    lm = latency.load()
    assert lm.target == "qemu-m55"
    for kind in latency.FEATURES:
        assert len(lm.coefficients[kind]) == len(latency.FEATURES[kind])
        assert lm.fit_error[kind]["held_out_mean_rel"] < 0.15, kind
    with pytest.raises(ValueError, match="no latency model"):
        latency.load("qemu-m0")


def test_sparser_fwcs_layers_are_predicted_cheaper():
    lm = latency.load()
    base = dict(in_elements=16 * 16 * 32, out_h=16, out_w=16, c_in=32, c_out=32, kh=3, kw=3)
    costs = [
        lm.predict_layer(latency.LayerShape("CONV_2D_FWCS", kept=k, **base))
        for k in (288, 200, 144, 50, 0)
    ]
    assert costs == sorted(costs, reverse=True)
    dense = lm.predict_layer(latency.LayerShape("CONV_2D", **base))
    assert costs[3] < 0.6 * dense  # ~83% of filterlets pruned


@needs_device
@pytest.mark.parametrize("sparsity,mode", [(0.0, "never"), (0.5, "always"), (0.5, "auto")])
def test_whole_model_prediction_matches_qemu(sparsity, mode):
    """ResNet-8 was never part of the fit: whole-model error stays within 10%."""
    model = dtmm.load(data_path("models", "resnet8", "resnet8_int8.tflite"))
    if sparsity:
        model = dtmm.prune.filterlets(model, sparsity)
    predicted = sum(layer.instructions for layer in latency.predict(model, mode))
    measured = device.run(dtmm.compile(model, sparse=mode), np.zeros((1, 32, 32, 3), np.int8))
    assert predicted == pytest.approx(measured.instructions, rel=0.10)
