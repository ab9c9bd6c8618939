"""Instruction counts on an emulated Cortex-M55 (QEMU mps3-an547).

Per layer and whole model, for ResNet-8 and VWW: dense kernels, FWCS at 0, 30,
50, 70 and 90% filterlet sparsity, the CSR baseline and the structured
baseline (filters removed) at 50%; with instructions per multiply-accumulate
of the dense-equivalent layer. Then the kernels on the same layer: each of
ResNet-8's convolution shapes as a one-layer model with random weights and
random filterlet masks, run once with the dense kernel (pruned weights stored
as zeros) and once with the FWCS kernel, as the FWCS/dense ratio. Figures are
guest instructions counted exactly by dtmm's QEMU plugin: instructions, not
cycles or milliseconds.

usage: python benchmarks/device.py [--models resnet8,vww] [--target qemu-m55]
"""

from __future__ import annotations

import argparse

import numpy as np

import dtmm
from dtmm import device, latency

from _common import MODELS, RESULTS, require_data, sample_input, write_json

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
    kernels = kernel_table(args.target)
    results = {"summary": rows, "layers": layers, "kernels": kernels}
    print(f"wrote {write_json('device.json', results)}")
    plot(rows, args.target)


# ResNet-8's convolutions: (input H, W, C_in, C_out, kernel, stride).
RESNET8_CONVS = [
    (32, 32, 16, 16, 3, 1),
    (32, 32, 16, 32, 3, 2),
    (16, 16, 32, 32, 3, 1),
    (16, 16, 32, 64, 3, 2),
    (8, 8, 64, 64, 3, 1),
    (32, 32, 16, 32, 1, 2),
    (16, 16, 32, 64, 1, 2),
]
SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)


def kernel_table(target: str) -> list[dict]:
    """FWCS vs dense kernel instructions on the same layer and weights."""
    rng = np.random.default_rng(0)
    table = []
    print(f"\nsame layer, FWCS / dense kernel instructions ({target}, not cycles)")
    print(
        f"{'layer (H W Cin Cout k s)':<26}{'dense':>10}" + "".join(f"{s:>7.0%}" for s in SPARSITIES)
    )
    for h, w, ci, co, k, stride in RESNET8_CONVS:
        oh, ow = -(-h // stride), -(-w // stride)
        kind = "CONV_2D_FWCS_1x1" if k == 1 else "CONV_2D_FWCS"
        row = {"shape": [h, w, ci, co, k, stride], "fwcs_over_dense": {}}
        for s in SPARSITIES:
            shape = latency.LayerShape(kind, h * w * ci, oh, ow, ci, co, k, k)
            model = latency.random_layer(kind, shape, 1 - s, rng)
            x = rng.integers(-128, 128, (1, h, w, ci)).astype(np.int8)
            counts = {
                mode: device.run(dtmm.compile(model, sparse=mode), x, target).instructions
                for mode in ("never", "always")
            }
            row["dense_instructions"] = row.get("dense_instructions", counts["never"])
            row["fwcs_over_dense"][f"{s:.1f}"] = counts["always"] / counts["never"]
        table.append(row)
        ratios = "".join(f"{r:>7.3f}" for r in row["fwcs_over_dense"].values())
        label = f"{h} {w} {ci} {co} {k} {stride}"
        print(f"{label:<26}{row['dense_instructions']:>10,}{ratios}")
    return table


def plot(rows: list[dict], target: str) -> None:
    """Instructions per inference vs filterlet sparsity, per model (needs matplotlib:
    pip install '.[bench]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install '.[bench]')")
        return
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for ax, name in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == name]
        fwcs = [r for r in mine if r["kind"] == "fwcs"]
        ax.plot(
            [100 * r["sparsity"] for r in fwcs],
            [r["instructions"] / 1e6 for r in fwcs],
            "o-",
            label="FWCS (every conv)",
        )
        for kind, style in (("dense", "k--"), ("auto", "g^"), ("structured", "rs")):
            for r in (r for r in mine if r["kind"] == kind):
                if kind == "dense":
                    ax.axhline(r["instructions"] / 1e6, color="k", linestyle="--", label="dense")
                else:
                    ax.plot(100 * r["sparsity"], r["instructions"] / 1e6, style, label=kind)
        ax.set_title(f"{name} on {target}")
        ax.set_xlabel("filterlet sparsity (%)")
        ax.set_ylabel("instructions per inference (millions, not cycles)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = RESULTS / "device.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
