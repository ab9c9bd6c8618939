"""Host inference speed: dtmm.Runtime vs the TFLite Micro interpreter vs LiteRT.

The three run side by side in interleaved rounds on the same input (the machine
is shared and noisy, so only ratios measured in one run mean anything); each
figure is the median per-inference time. LiteRT uses one thread (XNNPACK).

usage: python benchmarks/host.py [--rounds N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dtmm

from _common import MODELS, require_data, sample_input, tflm_interpreter, write_json


def _timers(rt, x, tflm, lite):
    """Closures timing n inferences on each runtime, in seconds per inference."""
    lite_in = lite.get_input_details()[0]["index"]

    def run_dtmm(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            rt.run(x)
        return (time.perf_counter() - t) / n

    def run_tflm(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            tflm.set_input(x, 0)
            tflm.invoke()
            tflm.get_output(0)
        return (time.perf_counter() - t) / n

    def run_litert(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            lite.set_tensor(lite_in, x)
            lite.invoke()
        return (time.perf_counter() - t) / n

    return run_dtmm, run_tflm, run_litert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    require_data()
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    rows = []
    for name, path in MODELS.items():
        rt = dtmm.Runtime(dtmm.compile(dtmm.load(path)))
        x = sample_input(rt.inputs[0].shape)
        tflm = tflm_interpreter(path)
        lite = LiteRT(model_path=str(path), num_threads=1)
        lite.allocate_tensors()

        run_dtmm, run_tflm, run_litert = _timers(rt, x, tflm, lite)
        times: dict[str, list[float]] = {"dtmm": [], "tflm": [], "litert": []}
        for fn in (run_dtmm, run_tflm, run_litert):  # warm up
            fn(2)
        for _ in range(args.rounds):
            times["dtmm"].append(run_dtmm(5))
            times["tflm"].append(run_tflm(2))
            times["litert"].append(run_litert(10))
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows.append(
            {
                "model": name,
                "dtmm_ms": med["dtmm"] * 1e3,
                "tflm_ms": med["tflm"] * 1e3,
                "litert_ms": med["litert"] * 1e3,
                "speedup_vs_tflm": med["tflm"] / med["dtmm"],
                "dtmm_over_litert": med["dtmm"] / med["litert"],
            }
        )

    print(
        f"{'model':<9} {'dtmm ms':>9} {'TFLM ms':>9} {'LiteRT ms':>10} "
        f"{'TFLM/dtmm':>10} {'dtmm/LiteRT':>12}"
    )
    for r in rows:
        print(
            f"{r['model']:<9} {r['dtmm_ms']:9.3f} {r['tflm_ms']:9.3f} {r['litert_ms']:10.3f} "
            f"{r['speedup_vs_tflm']:9.1f}x {r['dtmm_over_litert']:11.2f}x"
        )
    print(
        f"(median per inference over {args.rounds} interleaved rounds; "
        f"target: TFLM/dtmm >= 20x, aim dtmm/LiteRT <= 2x)"
    )
    print(f"wrote {write_json('host.json', rows)}")


if __name__ == "__main__":
    main()
