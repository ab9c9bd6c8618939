"""Corrupt, truncated and hostile blobs end in a clean error, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dtmm
from dtmm import demo

HERE = Path(__file__).parent


def _blobs(tmp_path: Path) -> list[Path]:
    paths = []
    model = demo.bundled_model()
    p = tmp_path / "digits.dtmm"
    p.write_bytes(dtmm.compile(dtmm.load(model)))
    paths.append(p)
    shared = HERE.parent.parent / "shared" / "data" / "models" / "resnet8" / "resnet8_int8.tflite"
    if shared.exists():
        p = tmp_path / "resnet8.dtmm"
        p.write_bytes(dtmm.compile(dtmm.load(shared)))
        paths.append(p)
    return paths


@pytest.mark.parametrize("seed", [1, 2])
def test_random_corruption_never_crashes(tmp_path, seed):
    for blob in _blobs(tmp_path):
        proc = subprocess.run(
            [sys.executable, str(HERE / "corrupt_blobs.py"), str(blob), str(seed), "3000"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, f"{blob.name}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        rejected = int(proc.stdout.split("rejected=")[1].split()[0])
        assert rejected > 2000, proc.stdout  # most mutations must be caught


def test_each_header_field_is_checked():
    blob = bytearray(dtmm.compile(dtmm.load(demo.bundled_model())))
    cases = {
        "DTMM_ERR_BAD_MAGIC": (0, b"XTMM"),
        "DTMM_ERR_BAD_VERSION": (4, (2).to_bytes(2, "little")),
        "DTMM_ERR_TRUNCATED": (8, (len(blob) + 16).to_bytes(4, "little")),
        "DTMM_ERR_BAD_CHECKSUM": (12, b"\0\0\0\0"),
    }
    for status, (offset, value) in cases.items():
        bad = bytearray(blob)
        bad[offset : offset + len(value)] = value
        with pytest.raises(ValueError, match=status):
            dtmm.Runtime(bytes(bad))
    with pytest.raises(ValueError, match="DTMM_ERR_TRUNCATED"):
        dtmm.Runtime(bytes(blob[:40]))
