"""Where a model's instructions go on the emulated device: the firmware
functions that execute the most guest instructions (not cycles) while
running one input, with each op's total beside.

    python tools/profile_device.py model.tflite [--sparsity 0.5] [--sparse auto]
                                                [--target qemu-m55] [--top 20]

The counts cover the whole firmware run (its start-up too, e.g. zeroing the
arena with memset); the per-op table covers the inference only. GNU objdump
does not decode MVE instructions, so this is the reliable view when tuning
the Helium kernels.
"""

from __future__ import annotations

import argparse

import numpy as np

import dtmm
from dtmm import device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help=".tflite or .onnx file")
    parser.add_argument("--sparsity", type=float, default=0.0, help="uniform filterlet pruning")
    parser.add_argument("--sparse", default="auto", choices=["auto", "always", "never", "csr"])
    parser.add_argument("--target", default="qemu-m55", choices=sorted(device.TARGETS))
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    problem = device.available()
    if problem:
        raise SystemExit(problem)
    model = dtmm.load(args.model)
    if args.sparsity:
        model = dtmm.prune.filterlets(model, args.sparsity)
    blob = dtmm.compile(model, sparse=args.sparse)
    info = dtmm.Runtime(blob).inputs[0]
    x = np.random.default_rng(0).integers(-128, 128, info.shape).astype(info.dtype)
    result = device.run(blob, x, args.target, profile=True)
    print(f"{args.target}: {result.instructions:,} instructions per inference (not cycles)")
    print(f"\n{'op':<22}{'kernel':<24}{'instructions':>14}")
    for layer in result.layers:
        print(f"{layer.name[:21]:<22}{layer.op:<24}{layer.instructions:>14,}")
    total = sum(n for _, n in result.functions)
    print(f"\n{'instructions':>14}  {'share':>6}  function (whole run: {total:,})")
    for name, n in result.functions[: args.top]:
        print(f"{n:>14,}  {n / total:>6.1%}  {name[:100]}")


if __name__ == "__main__":
    main()
