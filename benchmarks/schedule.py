"""dtmm.schedule's dynamic program against simulated annealing (the DTMM paper's search).

    python benchmarks/schedule.py

1. Search quality on the same additive models: 200 random layer/option tables
   (10 layers x 12 options); both searches get the same loss and byte
   budgets; reported is the predicted-instruction objective each reaches.
2. ResNet-8 end to end (needs ../shared/data): ``dtmm.schedule`` with each
   method, activation-aware pruning, calibration on ic01 images 0-99 (split
   by the scheduler into fit and validation halves), test on images 100-199;
   Cortex-M55 instructions measured under QEMU when the toolchain is there.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import dtmm
from dtmm.scheduler import Option, _Cost, _Table, search_anneal, search_dp

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_table(rng: np.random.Generator, layers: int = 10, options: int = 12) -> _Table:
    costs = []
    for _ in range(layers):
        scale = rng.uniform(0.5, 2.0)
        row = [_Cost(1e5 * scale, 5e3 * scale, 0.0, 0.0)]
        for k in range(1, options):
            row.append(
                _Cost(
                    1e5 * scale * (1 - 0.07 * k + rng.uniform(-0.03, 0.03)),
                    5e3 * scale * (1 - 0.075 * k + rng.uniform(-0.02, 0.02)),
                    0.0,
                    0.002 * k**2 * rng.uniform(0.2, 5.0),
                )
            )
        costs.append(row)
    opts = [[Option(k / options) for k in range(options)]] * layers
    return _Table([f"layer{i}" for i in range(layers)], opts, costs)


def search_quality() -> None:
    rng = np.random.default_rng(0)
    ratios, wins, ties, infeasible_sa, t_dp, t_sa = [], 0, 0, 0, 0.0, 0.0
    for trial in range(200):
        table = random_table(rng)
        dense_instr, dense_bytes, _, _ = table.totals([0] * 10)
        loss, nbytes = rng.uniform(0.05, 0.5), dense_bytes * rng.uniform(0.5, 0.9)
        t = time.perf_counter()
        dp = search_dp(table, loss, nbytes)
        t_dp += time.perf_counter() - t
        t = time.perf_counter()
        sa = search_anneal(table, loss, nbytes, seed=trial)
        t_sa += time.perf_counter() - t
        if dp is None:
            continue
        if sa is None:
            infeasible_sa += 1
            continue
        a, b = table.totals(dp)[0], table.totals(sa)[0]
        ratios.append(b / a)
        wins += b > a * (1 + 1e-9)
        ties += abs(b - a) <= a * 1e-9
    r = np.array(ratios)
    print("search quality, 200 random tables (10 layers x 12 options), same budgets:")
    print(
        f"  annealing / DP predicted instructions: mean {r.mean():.4f}, worst {r.max():.4f}; "
        f"DP better in {wins}, tied in {ties}, annealing better in {len(r) - wins - ties}; "
        f"annealing found no feasible point in {infeasible_sa}"
    )
    print(f"  time per search: DP {t_dp / 200 * 1e3:.1f} ms, annealing {t_sa / 200 * 1e3:.1f} ms")


def resnet8() -> None:
    path = SHARED / "models" / "resnet8" / "resnet8_int8.tflite"
    if not path.exists():
        print(f"skipping ResNet-8: {path} not found")
        return
    model = dtmm.load(path)
    data = np.load(SHARED / "eval" / "ic01_cifar10_test200.npz")
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    y = data["y"]
    device = dtmm.device.available() is None

    def test_accuracy(blob: bytes) -> float:
        out = dtmm.Runtime(blob).run(x[100:])
        return float(((out[0] if isinstance(out, list) else out).argmax(1) == y[100:]).mean())

    dense_blob = dtmm.compile(model)
    dense_acc = test_accuracy(dense_blob)
    print(f"\nResNet-8: dense test accuracy {dense_acc:.1%}, blob {len(dense_blob):,} B")
    print(
        f"  {'budget':<26}{'method':<8}{'val acc':>8}{'test acc':>9}{'blob B':>9}"
        f"{'pred. instr':>13}{'QEMU instr':>12}{'time s':>8}"
    )
    for flash, drop in ((None, 0.02), (None, 0.05), (int(0.93 * len(dense_blob)), 0.05)):
        for method in ("dp", "anneal"):
            label = f"flash {flash or '-'}, drop {drop:.0%}"
            t = time.time()
            try:
                res = dtmm.schedule(
                    model,
                    flash=flash,
                    calibration=(x[:100], y[:100]),
                    max_accuracy_drop=drop,
                    method=method,
                    progress=False,
                )
            except dtmm.BudgetError as e:
                print(f"  {label:<26}{method:<8} no schedule: {e}")
                continue
            blob = dtmm.compile(res.model)
            measured = dtmm.device.run(blob, x[:1]).instructions if device else None
            rep = res.report
            print(
                f"  {label:<26}{method:<8}{rep.accuracy:>8.1%}{test_accuracy(blob):>9.1%}"
                f"{len(blob):>9,}{rep.instructions:>13,.0f}"
                f"{measured if measured is not None else 'n/a':>12}{time.time() - t:>8.0f}"
            )


if __name__ == "__main__":
    search_quality()
    resnet8()
