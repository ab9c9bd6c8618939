"""Measure dtmm's kernels on the QEMU Cortex-M55 and fit the latency model.

    python tools/fit_latency.py            # writes python/dtmm/data/latency_qemu-m55.json

Needs the device toolchain (see dtmm.device). Runs ~250 single-layer models
(a few minutes) and prints each kernel's held-out fit error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dtmm import latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "python/dtmm/data/latency_qemu-m55.json",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    points = latency.measurement_grid(rng)

    def progress(msg: str) -> None:
        print(f"\r{msg:<60}", end="", file=sys.stderr, flush=True)

    samples = latency.measure(points, rng, progress=progress)
    print(file=sys.stderr)
    model = latency.fit(samples, seed=args.seed)
    args.out.write_text(model.to_json() + "\n")
    print(f"{'kernel':<24}{'samples':>8}{'held-out mean rel. err':>24}{'max':>8}")
    for kind, err in model.fit_error.items():
        print(
            f"{kind:<24}{err['samples']:>8}{err['held_out_mean_rel']:>24.1%}"
            f"{err['held_out_max_rel']:>8.1%}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
