"""Helpers shared by the benchmarks: model paths, inputs and the reference runtimes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = Path(__file__).parent / "results"

MODELS = {
    "resnet8": DATA / "models" / "resnet8" / "resnet8_int8.tflite",
    "vww": DATA / "models" / "vww" / "vww96_int8.tflite",
}


def require_data() -> None:
    if not DATA.exists():
        raise SystemExit(f"benchmark data not found: {DATA} (the reference models live there)")


def sample_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)


def tflm_interpreter(path: Path):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(path.read_bytes())


def tflm_arena(path: Path) -> tuple[int, int]:
    """(total, activation head) bytes from TFLite Micro's allocation report."""
    interp = tflm_interpreter(path)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
        tmp.seek(0)
        text = tmp.read()
    total = int(text.split("Arena allocation total ")[1].split()[0])
    head = int(text.split("Arena allocation head ")[1].split()[0])
    return total, head


def write_json(name: str, data: object) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2))
    return path
