"""Arena size: dtmm's offline plan vs TFLite Micro's arena vs the lower bound.

The lower bound is the largest sum of simultaneously live activations for the
model's op order. TFLite Micro's total also holds per-op persistent data that
dtmm keeps in the (flash) blob, so its activation "head" is printed as well.

usage: python benchmarks/memory.py
"""

from __future__ import annotations

import dtmm

from _common import MODELS, require_data, tflm_arena, write_json

TARGETS = {"resnet8": 50_000, "vww": 76_000}


def main() -> None:
    require_data()
    rows = []
    for name, path in MODELS.items():
        model = dtmm.load(path)
        blob = dtmm.compile(model)
        plan = dtmm.plan_memory(model)
        arena = dtmm.Runtime(blob).arena_size
        total, head = tflm_arena(path)
        rows.append(
            {
                "model": name,
                "dtmm_arena": arena,
                "lower_bound": plan.lower_bound,
                "tflm_arena": total,
                "tflm_head": head,
                "target": TARGETS[name],
                "blob_bytes": len(blob),
                "tflite_bytes": path.stat().st_size,
            }
        )
    print(
        f"{'model':<9} {'dtmm arena':>11} {'lower bnd':>10} {'TFLM arena':>11} "
        f"{'TFLM head':>10} {'target':>8} {'blob':>9} {'.tflite':>9}"
    )
    for r in rows:
        print(
            f"{r['model']:<9} {r['dtmm_arena']:>11,} {r['lower_bound']:>10,} "
            f"{r['tflm_arena']:>11,} {r['tflm_head']:>10,} {r['target']:>8,} "
            f"{r['blob_bytes']:>9,} {r['tflite_bytes']:>9,}"
        )
    print(f"wrote {write_json('memory.json', rows)}")


if __name__ == "__main__":
    main()
