"""Shared fixtures: paths to the reference data and the reference interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def data_path(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (../shared/data is provided in CI)")
    return path


def tflm_run(
    model_bytes: bytes, inputs: list[np.ndarray], num_outputs: int = 1
) -> list[np.ndarray]:
    """Run the TFLite Micro reference interpreter (the bit-exactness oracle)."""
    tflm = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    # TFLM sizes its arena from the file size by default; small test models need more.
    interp = tflm.Interpreter.from_bytes(bytes(model_bytes), arena_size=4 << 20)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return [interp.get_output(i) for i in range(num_outputs)]


def quantized_tensor(name, shape, scale, zp=0, data=None, dtype=np.int8, axis=0):
    """A dtmm.Tensor with per-tensor (or per-channel, scale an array) int8
    quantization, constant when ``data`` is given."""
    import dtmm

    scale = np.atleast_1d(np.asarray(scale, np.float32))
    zps = np.zeros(len(scale), np.int64) + zp
    return dtmm.Tensor(name, shape, np.dtype(dtype), scale, zps, axis, data)
