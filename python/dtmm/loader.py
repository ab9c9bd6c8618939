"""dtmm.load: read a model file into the dtmm IR."""

from __future__ import annotations

import os

import numpy as np

from .ir import Model
from .tflite_frontend import from_tflite_bytes


def load(
    path_or_bytes: str | os.PathLike | bytes | bytearray,
    calibration: np.ndarray | None = None,
) -> Model:
    """Load a model into a :class:`dtmm.Model`.

    ``.tflite`` (int8) is read directly, as are bytes of a .tflite file.
    ``.onnx`` needs the ``onnx`` extra: a QDQ-quantized graph is imported as is;
    a float graph is first quantized to int8 with ``calibration``, an array of
    representative inputs in the model's own layout, batch axis first. NCHW
    graphs become NHWC models (inputs included). ONNX models round their
    requantizations once, as onnxruntime does (``Model.rounding``).

    Raises :class:`dtmm.UnsupportedOpError` naming the op and node when the
    model uses an operator dtmm cannot run, and :class:`dtmm.ModelError` when
    the file is not a valid model.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return from_tflite_bytes(bytes(path_or_bytes), source="<bytes>")
    path = os.fspath(path_or_bytes)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    if path.endswith(".onnx"):
        from .onnx_frontend import from_onnx, is_quantized, quantize_float_onnx

        if calibration is not None:
            return from_onnx(quantize_float_onnx(path, calibration), source=path)
        model = from_onnx(path, source=path) if is_quantized(path) else None
        if model is None:
            raise ValueError(
                f"{path} is a float ONNX model: pass calibration=<representative inputs> "
                "so dtmm can quantize it to int8"
            )
        return model
    if calibration is not None:
        raise ValueError("calibration= applies to float ONNX models only")
    with open(path, "rb") as f:
        data = f.read()
    return from_tflite_bytes(data, source=path)
