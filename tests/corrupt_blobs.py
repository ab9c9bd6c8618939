"""Feeds mutated model blobs to dtmm.Runtime; run in a subprocess by
test_corruption.py so that a crash fails the test instead of killing pytest.

usage: python corrupt_blobs.py BLOB_FILE SEED COUNT
Prints one line of counts; exits 0 when every blob ended in a clean
ValueError or ran to completion.
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

import dtmm


def with_checksum(blob: bytearray) -> bytes:
    """Recompute the CRC so the mutation reaches the structural checks (a hostile blob)."""
    if len(blob) >= 16:
        blob[12:16] = (zlib.crc32(bytes(blob[16:])) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(blob)


def main() -> None:
    path, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    original = open(path, "rb").read()
    rng = np.random.default_rng(seed)
    rejected = ran = 0
    for i in range(count):
        blob = bytearray(original)
        kind = i % 4
        if kind == 0:  # truncation
            blob = blob[: int(rng.integers(0, len(blob)))]
        else:  # 1..8 random bytes replaced, in the header/tables more often
            for _ in range(int(rng.integers(1, 9))):
                hot = rng.random() < 0.5
                lo = 0 if not hot else max(0, len(blob) - 4096)
                pos = (
                    int(rng.integers(lo, len(blob)))
                    if not hot or rng.random() < 0.7
                    else int(rng.integers(0, 64))
                )
                blob[pos] = int(rng.integers(0, 256))
        data = bytes(blob) if kind == 1 else with_checksum(blob)
        try:
            rt = dtmm.Runtime(data)
        except ValueError:
            rejected += 1
            continue
        x = [rng.integers(-128, 128, size=t.shape).astype(t.dtype) for t in rt.inputs]
        rt.run(x if len(x) > 1 else x[0])
        ran += 1
    print(f"rejected={rejected} ran={ran}")


if __name__ == "__main__":
    main()
