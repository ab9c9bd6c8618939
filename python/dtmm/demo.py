"""The end-to-end demo behind `dtmm demo`: load, compile, run, report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .compiler import compile
from .loader import load
from .memory import plan_memory
from .runtime import Runtime

_BUNDLED = Path(__file__).parent / "data" / "digits_int8.tflite"
_DIGITS_TEST_START = 1437  # tools/make_digits_model.py trains on the images before this


def bundled_model() -> Path:
    """Path of the bundled int8 digits classifier (see tools/make_digits_model.py)."""
    return _BUNDLED


def _digits_test_set() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise SystemExit(
            "the digits demo needs scikit-learn for its test images: pip install 'dtmm[demo]'"
        ) from e
    digits = load_digits()
    x = np.clip(np.round(digits.data[_DIGITS_TEST_START:] / (16.0 / 255.0)) - 128, -128, 127)
    return x.astype(np.int8).reshape(-1, 1, 64)[:, 0], digits.target[_DIGITS_TEST_START:]


def run(model_path: str | None = None, data_path: str | None = None) -> float | None:
    """Load a .tflite model, compile it, run it and print what happened.

    Without arguments: the bundled digits model on scikit-learn's held-out
    digits. With a model path: that model on ``data_path`` (an .npz with
    ``x`` already in the model's input dtype and ``y`` labels) or, without
    data, on a few random inputs. Returns the accuracy when labels are known.
    """
    path = Path(model_path) if model_path else _BUNDLED
    t0 = time.perf_counter()
    model = load(path)
    blob = compile(model)
    rt = Runtime(blob)
    plan = plan_memory(model)
    print(
        f"model      {path.name}: {len(model.ops)} ops, "
        f"{', '.join(sorted({op.type for op in model.ops}))}"
    )
    print(
        f"compiled   {len(blob):,} byte blob (the .tflite is {path.stat().st_size:,} bytes) "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    print(
        f"arena      {rt.arena_size:,} bytes (lower bound for this op order: {plan.lower_bound:,})"
    )
    info = rt.inputs[0]
    if model_path is None:
        x, y = _digits_test_set()
    elif data_path:
        data = np.load(data_path)
        x, y = data["x"], data["y"]
    else:
        rng = np.random.default_rng(0)
        if np.issubdtype(info.dtype, np.integer):
            x = rng.integers(-128, 128, size=(8,) + info.shape[1:]).astype(info.dtype)
        else:
            x = rng.standard_normal((8,) + info.shape[1:]).astype(info.dtype)
        y = None
    t0 = time.perf_counter()
    out = rt.run(x)
    elapsed = time.perf_counter() - t0
    out = out[0] if isinstance(out, list) else out
    pred = out.reshape(len(x), -1).argmax(axis=1)
    print(
        f"ran        {len(x)} inferences in {elapsed * 1e3:.1f} ms "
        f"({elapsed / len(x) * 1e6:.0f} us each)"
    )
    print(f"predicted  {' '.join(map(str, pred[:20]))}{' ...' if len(pred) > 20 else ''}")
    if y is None:
        return None
    accuracy = float((pred == np.asarray(y)).mean())
    print(f"labels     {' '.join(map(str, np.asarray(y)[:20]))}{' ...' if len(y) > 20 else ''}")
    print(f"accuracy   {accuracy:.1%} on {len(y)} labelled inputs")
    return accuracy
