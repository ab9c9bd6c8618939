"""Instruction counts on an emulated Cortex-M55 (QEMU mps3-an547).

Per layer and whole model, for ResNet-8 and VWW: dense kernels, FWCS at 0, 30,
50, 70 and 90% filterlet sparsity, the CSR baseline and the structured
baseline (filters removed) at 50%; with instructions per multiply-accumulate
of the dense-equivalent layer. Figures are guest instructions counted exactly
by dtmm's QEMU plugin: instructions, not cycles or milliseconds.

usage: python benchmarks/device.py [--models resnet8,vww] [--target qemu-m55]
"""

from __future__ import annotations

import argparse

import dtmm
from dtmm import device

from _common import MODELS, require_data, sample_input, write_json

CONV = ("CONV_2D", "CONV_2D_FWCS", "CONV_2D_CSR")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="resnet8,vww")
    parser.add_argument("--target", default="qemu-m55")
    args = parser.parse_args()
    require_data()
    problem = device.available()
    if problem:
        raise SystemExit(problem)
    rows, layers = [], []
    for name in args.models.split(","):
        model = dtmm.load(MODELS[name])
        x = sample_input(dtmm.Runtime(dtmm.compile(model)).inputs[0].shape)
        variants = [("dense", 0.0, dtmm.compile(model, sparse="never"))]
        for s in (0.0, 0.3, 0.5, 0.7, 0.9):
            pruned = dtmm.prune.fc_blocks(dtmm.prune.filterlets(model, s), s)
            variants.append(("fwcs", s, dtmm.compile(pruned, sparse="always")))
        half = dtmm.prune.fc_blocks(dtmm.prune.filterlets(model, 0.5), 0.5)
        variants.append(("auto", 0.5, dtmm.compile(half, sparse="auto")))
        variants.append(("csr", 0.5, dtmm.compile(half, sparse="csr")))
        variants.append(
            ("structured", 0.5, dtmm.compile(dtmm.prune.filters(model, 0.5), sparse="never"))
        )
        for kind, s, blob in variants:
            r = device.run(blob, x, args.target)
            conv = [layer for layer in r.layers if layer.op in CONV]
            macs = sum(layer.macs for layer in conv)
            conv_instr = sum(layer.instructions for layer in conv)
            rows.append(
                {
                    "model": name,
                    "kind": kind,
                    "sparsity": s,
                    "blob_bytes": len(blob),
                    "instructions": r.instructions,
                    "conv_instructions": conv_instr,
                    "conv_macs": macs,
                    "conv_instr_per_mac": conv_instr / macs if macs else 0,
                }
            )
            layers += [
                {
                    "model": name,
                    "kind": kind,
                    "sparsity": s,
                    "layer": layer.name,
                    "op": layer.op,
                    "macs": layer.macs,
                    "instructions": layer.instructions,
                }
                for layer in r.layers
            ]
    print(
        f"{'model':<8} {'kind':<10} {'spars':>5} {'blob':>8} {'instructions':>13} "
        f"{'conv instr':>11} {'conv MACs':>10} {'instr/MAC':>9}"
    )
    for r in rows:
        print(
            f"{r['model']:<8} {r['kind']:<10} {r['sparsity']:5.0%} {r['blob_bytes']:8,} "
            f"{r['instructions']:13,} {r['conv_instructions']:11,} {r['conv_macs']:10,} "
            f"{r['conv_instr_per_mac']:9.2f}"
        )
    print(f"(QEMU {args.target}, guest instructions per inference, not cycles; on the M55 the")
    print(" conv/FC dot products, requantization and ADD use Helium, the rest is portable C++)")
    print(f"wrote {write_json('device.json', {'summary': rows, 'layers': layers})}")


if __name__ == "__main__":
    main()
