"""dtmm.load: read a model file into the dtmm IR."""

from __future__ import annotations

import os

from .errors import ModelError
from .ir import Model
from .tflite_frontend import from_tflite_bytes


def load(path_or_bytes: str | os.PathLike | bytes | bytearray) -> Model:
    """Load a ``.tflite`` model (a path or the file's bytes) into a :class:`dtmm.Model`.

    Raises :class:`dtmm.UnsupportedOpError` naming the op and node when the
    model uses an operator dtmm cannot run, and :class:`dtmm.ModelError` when
    the file is not a valid model.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return from_tflite_bytes(bytes(path_or_bytes), source="<bytes>")
    path = os.fspath(path_or_bytes)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".onnx"):
        raise ModelError(f"{path}: ONNX import is not available yet; convert to .tflite")
    return from_tflite_bytes(data, source=path)
