"""Filterlet sparsity on real models: flash size and host speed.

For each model and filterlet sparsity (magnitude pruned per layer, FC blocks
of 16 at the same rate, no retraining) it compiles the same pruned weights
four ways -- dense kernels (zeros stored), FWCS, CSR (per-weight baseline) --
plus the structured baseline (the same fraction of whole filters pruned and
physically removed where exact), and reports blob bytes, sparse index bytes,
the largest FWCS index share of any layer with C_in >= 16, and host time per
inference of the conv layers (per-op medians summed, in interleaved rounds).

usage: python benchmarks/sparsity.py [--repeats N] [--rounds R] [--models resnet8,vww]
"""

from __future__ import annotations

import argparse

import numpy as np

import dtmm

from _common import MODELS, require_data, sample_input, write_json

SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.9)
CONV_OPS = ("CONV_2D", "CONV_2D_FWCS", "CONV_2D_CSR")


def conv_seconds(
    blobs: dict[str, bytes], x: np.ndarray, repeats: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Per blob: (conv-layer seconds, whole-model seconds) per inference. The
    blobs are profiled in interleaved rounds (each a median of per-op times
    over ``repeats`` runs), so a slow spell of the machine hits them all alike;
    the figure is the median over rounds. CSR runs fewer repeats (it is slow)."""
    runtimes = {kind: dtmm.Runtime(blob) for kind, blob in blobs.items()}
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in blobs}
    for _ in range(rounds):
        for kind, rt in runtimes.items():
            prof = rt.profile(x, max(2, repeats // 5) if kind == "csr" else repeats)
            conv = sum(p.seconds for p in prof if p.type in CONV_OPS)
            samples[kind].append((conv, sum(p.seconds for p in prof)))
    return {
        kind: (float(np.median([c for c, _ in v])), float(np.median([t for _, t in v])))
        for kind, v in samples.items()
    }


def max_index_share(blob: bytes) -> float:
    shares = [
        layer.index_bytes / layer.value_bytes
        for layer in dtmm.inspect(blob).layers
        if layer.storage == "FWCS" and layer.input_shape[-1] >= 16 and layer.value_bytes
    ]
    return max(shares, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default="resnet8,vww")
    args = parser.parse_args()
    require_data()
    rows = []
    for name in args.models.split(","):
        path = MODELS[name]
        model = dtmm.load(path)
        x = sample_input(dtmm.Runtime(dtmm.compile(model)).inputs[0].shape)
        dense0 = len(dtmm.compile(model, sparse="never"))
        for s in SPARSITIES:
            pruned = dtmm.prune.fc_blocks(dtmm.prune.filterlets(model, s), s)
            blobs = {
                "dense": dtmm.compile(pruned, sparse="never"),
                "fwcs": dtmm.compile(pruned, sparse="always"),
                "auto": dtmm.compile(pruned, sparse="auto"),
                "csr": dtmm.compile(pruned, sparse="csr"),
                "structured": dtmm.compile(dtmm.prune.filters(model, s), sparse="never"),
            }
            times = conv_seconds(blobs, x, args.repeats, args.rounds)
            report = dtmm.inspect(blobs["fwcs"])
            rows.append(
                {
                    "model": name,
                    "sparsity": s,
                    "tflite_bytes": path.stat().st_size,
                    "dense0_bytes": dense0,
                    **{f"{k}_bytes": len(b) for k, b in blobs.items()},
                    "fwcs_index_bytes": report.index_bytes,
                    "fwcs_value_bytes": report.value_bytes,
                    "fwcs_max_index_share": max_index_share(blobs["fwcs"]),
                    "csr_index_bytes": dtmm.inspect(blobs["csr"]).index_bytes,
                    **{f"{k}_conv_ms": t[0] * 1e3 for k, t in times.items()},
                    **{f"{k}_total_ms": t[1] * 1e3 for k, t in times.items()},
                }
            )
    print(
        f"{'model':<8} {'spars':>5} | {'dense':>7} {'FWCS':>7} {'ratio':>5} {'r0':>5} {'auto':>7} "
        f"{'CSR':>7} {'struct':>7} {'.tflite':>7} | {'index':>6} {'max idx%':>8} | "
        f"{'conv ms: dense':>14} {'FWCS':>6} {'ratio':>5} {'auto':>6} {'CSR':>7} {'struct':>6}"
    )
    for r in rows:
        print(
            f"{r['model']:<8} {r['sparsity']:5.0%} | {r['dense_bytes']:7,} {r['fwcs_bytes']:7,} "
            f"{r['fwcs_bytes'] / r['dense_bytes']:5.2f} {r['fwcs_bytes'] / r['dense0_bytes']:5.2f} "
            f"{r['auto_bytes']:7,} {r['csr_bytes']:7,} "
            f"{r['structured_bytes']:7,} {r['tflite_bytes']:7,} | {r['fwcs_index_bytes']:6,} "
            f"{r['fwcs_max_index_share']:8.2%} | {r['dense_conv_ms']:14.3f} "
            f"{r['fwcs_conv_ms']:6.3f} "
            f"{r['fwcs_conv_ms'] / r['dense_conv_ms']:5.2f} {r['auto_conv_ms']:6.3f} "
            f"{r['csr_conv_ms']:7.2f} {r['structured_conv_ms']:6.3f}"
        )
    print(
        "(bytes: whole blob; ratio: FWCS / dense blob of the same pruned weights; max idx%: largest"
    )
    print(
        " FWCS index / value bytes over layers with C_in >= 16; conv ms: host median per inference)"
    )
    print(f"wrote {write_json('sparsity.json', rows)}")


if __name__ == "__main__":
    main()
