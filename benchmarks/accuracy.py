"""Accuracy study: dtmm (filterlet + filter, scheduled) vs structured (filters)
vs unstructured (per-weight CSR) pruning.

    python benchmarks/accuracy.py fashion   # train, prune, fine-tune on Fashion-MNIST
    python benchmarks/accuracy.py resnet8   # post-training on ResNet-8 (../shared/data)
    python benchmarks/accuracy.py vww       # post-training on visual wake words
    python benchmarks/accuracy.py resnet8-distill  # post-training, then distillation

Fashion-MNIST (Debian package dataset-fashion-mnist): a small CNN is trained
in PyTorch, then for flash budgets of 50/30/20% of the dense int8 blob each
method is fine-tuned for the same epochs with its masks, exported to ONNX,
quantized with calibration data, compiled and evaluated on the 10k test
images with the bit-exact host runtime; Cortex-M55 instructions are measured
under QEMU (``dtmm.device``) when the toolchain is there. Results go to
``docs/accuracy/`` (CSV, PNG) and stdout.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import time
from pathlib import Path

import numpy as np

import dtmm
from dtmm.scheduler import Option, apply_options

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "accuracy"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
SHARED = ROOT.parent / "shared" / "data"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def instructions(blob: bytes, x: np.ndarray) -> int | None:
    if dtmm.device.available() is not None:
        return None
    return dtmm.device.run(blob, x[:1]).instructions


def evaluate(blob: bytes, x: np.ndarray, y: np.ndarray) -> float:
    out = dtmm.Runtime(blob).run(x)
    out = out[0] if isinstance(out, list) else out
    return float((out.reshape(len(x), -1).argmax(1) == y).mean())


# ---------------------------------------------------------------- Fashion-MNIST


def load_fmnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def idx(name: str) -> np.ndarray:
        with gzip.open(FMNIST / name) as f:
            data = f.read()
        ndim = data[3]
        dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)

    if not FMNIST.exists():
        sys.exit(f"{FMNIST} not found: apt-get install dataset-fashion-mnist")
    xs = [
        idx(f"{p}-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255
        for p in ("train", "t10k")
    ]
    ys = [idx(f"{p}-labels-idx1-ubyte.gz").astype(np.int64) for p in ("train", "t10k")]
    return xs[0], ys[0], xs[1], ys[1]


def cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


CONVS = ["0", "2", "4", "6"]  # the Conv2d modules of cnn(), in graph order
# "dtmm greedy schedule" (the measured greedy search, 4-9 minutes per budget)
# runs only when named with --methods
DEFAULT_METHODS = ("structured", "unstructured", "dtmm", "dtmm uniform filterlets")


def train(model, x, y, epochs: float, pruner=None, lr: float = 2e-3, seed: int = 0) -> None:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = int(epochs * len(x) / 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    rng = np.random.default_rng(seed)
    model.train()
    t0 = time.time()
    for step in range(steps):
        idx = rng.integers(0, len(x), 128)
        xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if pruner:
            pruner.accumulate()
        opt.step()
        sched.step()
        if pruner:
            pruner.step()
        if step % 200 == 0:
            log(f"  step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    model.eval()


def to_dtmm(model, x_cal: np.ndarray, tmp: Path, pruner=None) -> dtmm.Model:
    import torch

    from dtmm.torch import Pruner

    path = tmp / "model.onnx"
    (pruner or Pruner(model)).export_onnx(str(path), torch.from_numpy(x_cal[:1]))
    return dtmm.load(path, calibration=x_cal)


def fit_ratio(make, budget: int, lo: float = 0.0, hi: float = 0.99) -> float:
    """The smallest ratio whose compiled blob fits ``budget`` (bisection)."""
    for _ in range(14):
        mid = (lo + hi) / 2
        if len(make(mid)) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


def fashion(args: argparse.Namespace) -> None:
    import tempfile

    import torch

    from dtmm.torch import Pruner

    torch.set_num_threads(2)
    x_tr, y_tr, x_te, y_te = load_fmnist()
    x_te_nhwc = x_te.transpose(0, 2, 3, 1)
    rng = np.random.default_rng(0)
    cal_idx = rng.choice(len(x_tr), 512, replace=False)
    x_cal = x_tr[cal_idx]
    sched_idx = rng.choice(len(x_tr), 2000, replace=False)
    tmp = Path(tempfile.mkdtemp())

    log(f"training the dense CNN for {args.epochs} epochs")
    dense = cnn()
    train(dense, x_tr, y_tr, args.epochs)
    dense_state = {k: v.clone() for k, v in dense.state_dict().items()}
    dense_model = to_dtmm(dense, x_cal, tmp)
    dense_blob = dtmm.compile(dense_model)
    rows = [
        dict(
            method="dense",
            budget=1.0,
            accuracy=evaluate(dense_blob, x_te_nhwc, y_te),
            blob=len(dense_blob),
            arena=dtmm.Runtime(dense_blob).arena_size,
            instructions=instructions(dense_blob, x_te_nhwc),
            ratios="",
        )
    ]
    log(f"dense: {rows[0]}")
    conv_names = [op.name for op in dense_model.ops if op.type == "CONV_2D"]
    x_sched = x_tr[sched_idx].transpose(0, 2, 3, 1)

    def structured(budget: int):
        # the same fraction of filters in every conv whose output feeds a conv
        f = fit_ratio(
            lambda r: dtmm.compile(
                apply_options(dense_model, {n: Option(0.0, r) for n in conv_names[:-1]}, None, "l2")
            ),
            budget,
        )
        return (
            {"filters": {CONVS[i]: f for i in range(len(CONVS) - 1)}},
            "never",
            f"filters {f:.0%} (first {len(CONVS) - 1} convs)",
        )

    def unstructured(budget: int):
        # per-weight magnitude, CSR storage with its index bytes
        w = fit_ratio(
            lambda r: dtmm.compile(dtmm.prune.weights(dense_model, r), sparse="csr"), budget
        )
        return {"weights": w}, "csr", f"weights {w:.0%}"

    def scheduled(budget: int, method: str):
        # the scheduler's per-layer filterlet / filter ratios and storage,
        # least predicted loss within the flash budget (fine-tuning follows)
        result = dtmm.schedule(
            dense_model,
            flash=budget,
            calibration=(x_sched, y_tr[sched_idx]),
            criterion="l2",
            objective="accuracy",
            method=method,
            progress=False,
        )
        log(str(result.report))
        lay = result.report.layers
        return (
            {
                "filterlets": {CONVS[i]: r.filterlets for i, r in enumerate(lay)},
                "filters": {CONVS[i]: r.filters for i, r in enumerate(lay)},
            },
            {i: ("always" if "FWCS" in r.kernel else "never") for i, r in enumerate(lay)},
            ", ".join(f"{r.filterlets:.0%}/{r.filters:.0%}" for r in lay),
        )

    def uniform(budget: int):
        # dtmm without the scheduler: the same filterlet fraction everywhere, FWCS
        u = fit_ratio(
            lambda r: dtmm.compile(dtmm.prune.filterlets(dense_model, r), sparse="always"),
            budget,
        )
        return {"filterlets": u}, "always", f"filterlets {u:.0%}"

    def finetuned(ratios: dict, storage) -> bytes:
        """The dense CNN fine-tuned under ``ratios``' masks, imported and compiled."""
        model = cnn()
        model.load_state_dict(dense_state)
        steps = int(args.finetune * len(x_tr) / 128)
        pruner = Pruner(model, **ratios, end=steps // 2, every=max(steps // 20, 1))
        train(model, x_tr, y_tr, args.finetune, pruner, lr=1e-3, seed=1)
        imported = to_dtmm(model, x_cal, tmp, pruner)
        if isinstance(storage, dict):
            names = [op.name for op in imported.ops if op.type == "CONV_2D"]
            storage = {names[i]: mode for i, mode in storage.items()}
        return dtmm.compile(imported, sparse=storage)

    plans = {
        "structured": structured,
        "unstructured": unstructured,
        "dtmm": lambda budget: scheduled(budget, "layer-adaptive"),
        "dtmm greedy schedule": lambda budget: scheduled(budget, "greedy"),
        "dtmm uniform filterlets": uniform,
    }

    for budget_frac in args.budgets:
        budget = int(budget_frac * len(dense_blob))
        for method, plan in plans.items():
            if method not in (args.methods or DEFAULT_METHODS):
                continue
            # The fine-tuned masks can empty other filters than the fit's (an
            # emptied filter leaves the blob with the next conv's input
            # channels), and CSR's bytes move with the requantized weights: a
            # blob over the budget is fitted again to a budget smaller by the
            # overshoot and fine-tuned again from the dense weights.
            target = budget
            for _ in range(3):
                ratios, storage, desc = plan(target)
                if target < budget:
                    desc += f" (fitted to {target:,} B after an overshoot)"
                log(f"{method} at {budget_frac:.0%}: {desc}; fine-tuning {args.finetune} epochs")
                blob = finetuned(ratios, storage)
                if len(blob) <= budget:
                    break
                log(f"  {len(blob):,} B is over the {budget:,} B budget")
                target -= len(blob) - budget
            else:
                desc += " (over the budget after 3 attempts)"
            row = dict(
                method=method,
                budget=budget_frac,
                accuracy=evaluate(blob, x_te_nhwc, y_te),
                blob=len(blob),
                arena=dtmm.Runtime(blob).arena_size,
                instructions=instructions(blob, x_te_nhwc),
                ratios=desc,
            )
            log(f"  -> {row}")
            rows.append(row)
    report(rows, args.out, budget_key="budget")


# ---------------------------------------------------------------- ResNet-8


def augmented(x: np.ndarray) -> np.ndarray:
    """NHWC images with their mirror images, each also shifted by 2 pixels in
    four directions: ten times the calibration samples for the refit."""
    out = [x, x[:, :, ::-1]]
    for dy, dx in ((2, 0), (-2, 0), (0, 2), (0, -2)):
        out += [np.roll(v, (dy, dx), axis=(1, 2)) for v in (x, x[:, :, ::-1])]
    return np.ascontiguousarray(np.concatenate(out))


def removed(pruned: dtmm.Model) -> str:
    """Fractions of the conv filterlets and weights that are zero, model-wide."""
    dead = weights = total = zero = 0
    for op in pruned.ops:
        if op.type == "CONV_2D":
            w = pruned.tensors[op.inputs[1]].data
            gone = ~(w != 0).any(axis=3)
            dead, total = dead + gone.sum(), total + gone.size
            zero, weights = zero + (w == 0).sum(), weights + w.size
    return f"{dead / total:.1%} of filterlets, {zero / weights:.1%} of weights"


def post_training(
    model: dtmm.Model,
    x: np.ndarray,
    y: np.ndarray,
    cal: np.ndarray,
    sparsities: list[float],
    name: str,
) -> None:
    """Each method at each sparsity, without training data: pruned (and for
    the activation-aware methods refit) on ``x[cal]``, measured on the rest."""
    ev = np.setdiff1d(np.arange(len(x)), cal)
    dense_blob = dtmm.compile(model)
    rows = [
        dict(
            method="dense",
            sparsity=0.0,
            accuracy=evaluate(dense_blob, x[ev], y[ev]),
            blob=len(dense_blob),
            arena=dtmm.Runtime(dense_blob).arena_size,
            instructions=instructions(dense_blob, x[ev]),
            ratios=removed(model),
        )
    ]
    log(f"{name} dense on {len(ev)} images: {rows[0]['accuracy']:.1%} ({removed(model)})")
    for s in sparsities:
        variants = {
            "dtmm (activation-aware filterlets)": lambda s=s: dtmm.prune.filterlets(
                model, s, criterion="activation", calibration=x[cal]
            ),
            "dtmm (activation-aware, layer-adaptive)": lambda s=s: dtmm.prune.filterlets(
                model, s, criterion="activation", calibration=x[cal], allocation="layer-adaptive"
            ),
            "dtmm (activation-aware, augmented calibration)": lambda s=s: dtmm.prune.filterlets(
                model, s, criterion="activation", calibration=augmented(x[cal])
            ),
            "dtmm (l2 filterlets)": lambda s=s: dtmm.prune.filterlets(model, s),
            # filters zeroed with their bias: removed where the compiler can do
            # so exactly, else left to "auto" (dense, or FWCS with empty filters)
            "structured (filters)": lambda s=s: dtmm.prune.filters(model, s),
            "unstructured (weights, CSR)": lambda s=s: dtmm.prune.weights(model, s),
        }
        for method, prune in variants.items():
            pruned = prune()
            blob = dtmm.compile(pruned, sparse="csr" if "CSR" in method else "auto")
            row = dict(
                method=method,
                sparsity=s,
                accuracy=evaluate(blob, x[ev], y[ev]),
                blob=len(blob),
                arena=dtmm.Runtime(blob).arena_size,
                instructions=instructions(blob, x[ev]),
                ratios=removed(pruned),
            )
            log(f"{method:<46} {s:.0%}: {row['accuracy']:.1%}, {row['blob']:,} B")
            rows.append(row)
    report(rows, name, budget_key="sparsity")


def resnet8(args: argparse.Namespace) -> None:
    """ic01: calibration on images 0..calibration-1, accuracy on the rest."""
    model = dtmm.load(SHARED / "models" / "resnet8" / "resnet8_int8.tflite")
    data = np.load(SHARED / "eval" / "ic01_cifar10_test200.npz")
    x = (data["x"].astype(np.int16) - 128).astype(np.int8)
    post_training(model, x, data["y"], np.arange(args.calibration), args.sparsities, "resnet8")


def vww(args: argparse.Namespace) -> None:
    """vww01 (100 person images, then 100 without): calibration on the first
    calibration/2 of each half, accuracy on the other 150."""
    model = dtmm.load(SHARED / "models" / "vww" / "vww96_int8.tflite")
    parts = [np.load(SHARED / "eval" / f"vww01_coco96_200_part{i}.npz") for i in (0, 1)]
    x = (np.concatenate([p["x"] for p in parts]).astype(np.int16) - 128).astype(np.int8)
    y = np.concatenate([p["y"] for p in parts])
    half = args.calibration // 2
    cal = np.concatenate([np.arange(half), 100 + np.arange(half)])
    post_training(model, x, y, cal, args.sparsities, "vww")


def resnet8_distill(args: argparse.Namespace) -> None:
    """Post-training filterlet pruning (activation-aware, on the model quantized
    from the float ONNX), then distillation from the dense float model on the
    calibration images (augmented) and on inputs synthesized from the dense
    model (dtmm.synthetic): logits and every ReLU's output (or the residual
    blocks'), with the masks held; several students with different seeds,
    then their mean (dtmm.distill.soup). Int8 via dtmm before and after."""
    import tempfile

    import torch

    from dtmm.distill import distill, load_pruned, soup
    from dtmm.synthetic import synthesize
    from dtmm.torch import from_onnx

    torch.set_num_threads(2)
    onnx_path = SHARED / "models" / "onnx" / "resnet8_fp32_nchw.onnx"
    data = np.load(SHARED / "eval" / "ic01_cifar10_test200.npz")
    x = data["x"].astype(np.float32)  # 0..255, as the float model takes it
    y = data["y"]
    n_cal = args.calibration
    cal_nchw = x[:n_cal].transpose(0, 3, 1, 2)
    tmp = Path(tempfile.mkdtemp())
    dense = dtmm.load(onnx_path, calibration=cal_nchw)
    teacher = from_onnx(str(onnx_path)).eval()
    features = teacher.outputs_of("Relu" if args.features == "relu" else "Add")
    sources = [cal_nchw]
    if args.synthetic:
        log(f"synthesizing {args.synthetic} inputs from the dense float model")
        sources.append(
            synthesize(
                teacher, cal_nchw, args.synthetic, steps=args.synthetic_steps, seed=args.seed
            )
        )

    def row(method: str, sparsity: float, model: dtmm.Model, ratios: str) -> dict:
        blob = dtmm.compile(model)
        # The same int8 model with TFLite's requantization rounding, for a
        # second view of how many of the 150 images are near a tie.
        twice = model.copy()
        twice.rounding = "tflite"
        tflite = dtmm.compile(twice)
        return dict(
            method=method,
            sparsity=sparsity,
            accuracy=evaluate(blob, x[n_cal:], y[n_cal:]),
            accuracy_tflite_rounding=evaluate(tflite, x[n_cal:], y[n_cal:]),
            blob=len(blob),
            arena=dtmm.Runtime(blob).arena_size,
            instructions=None,
            ratios=ratios,
        )

    rows = [row("dense", 0.0, dense, "quantized from the float ONNX")]
    dense_acc = rows[0]["accuracy"]
    log(f"dense int8 (quantized from float) on images {n_cal}..199: {dense_acc:.1%}")

    def distilled(method: str, sparsity: float, module, what: str) -> None:
        path = tmp / f"resnet8_{sparsity}.onnx"
        module.export_onnx(str(path), torch.from_numpy(cal_nchw[:1]))
        model = dtmm.load(path, calibration=cal_nchw)
        rows.append(row(method, sparsity, model, f"{removed(model)}; {what}"))
        log(f"  -> {rows[-1]} (dense {dense_acc:.1%})")

    for s in args.sparsities:
        pruned = dtmm.prune.filterlets(
            dense, s, "activation", calibration=x[:n_cal], allocation=args.allocation
        )
        rows.append(row("dtmm activation-aware (OBS + refit)", s, pruned, removed(pruned)))
        log(f"  {s:.0%} before distillation: {rows[-1]['accuracy']:.1%}")
        data = "augmented calibration images"
        if len(sources) > 1:
            data += f", half of them synthesized ({len(sources[1])} inputs)"
        how = f"{args.steps} steps of 64 {data}, {args.features} outputs matched"

        students = []
        for seed in range(args.seed, args.seed + args.students):
            student = load_pruned(from_onnx(str(onnx_path)), pruned)
            distill(
                student,
                teacher,
                sources,
                steps=args.steps,
                lr=args.lr,
                features=features,
                seed=seed,
            )
            students.append(student)
            distilled(f"dtmm OBS + refit, distillation, seed {seed}", s, student, how)
        if len(students) > 1:
            distilled(
                f"dtmm OBS + refit, distillation, soup of {len(students)}",
                s,
                soup(students),
                f"the mean of the {len(students)} students above (dtmm.distill.soup)",
            )
    report(rows, "resnet8_distill", budget_key="sparsity")


def report(rows: list[dict], name: str, budget_key: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{name}: {budget_key}, method, int8 accuracy, blob B, arena B, M55 instructions")
    for r in rows:
        instr = f"{r['instructions']:,}" if r["instructions"] else "n/a"
        print(
            f"  {r[budget_key]:>5.0%}  {r['method']:<36} {r['accuracy']:7.2%} "
            f"{r['blob']:>8,} {r['arena']:>8,} {instr:>12}  {r['ratios']}"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install .[bench]): no plot")
        return
    # the instructions panel only when some row was measured on the M55
    measured = any(r["instructions"] for r in rows)
    fig, grid = plt.subplots(
        1, 2 if measured else 1, figsize=(10 if measured else 5.5, 4), squeeze=False
    )
    axes = list(grid[0])
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"):
        pts = [r for r in rows if r["method"] == method]
        axes[0].plot([r["blob"] for r in pts], [r["accuracy"] for r in pts], "o-", label=method)
        if measured:
            with_instr = [r for r in pts if r["instructions"]]
            axes[1].plot(
                [r["instructions"] for r in with_instr],
                [r["accuracy"] for r in with_instr],
                "o-",
                label=method,
            )
    dense = rows[0]
    for ax in axes:
        ax.axhline(
            dense["accuracy"], color="gray", ls=":", label="dense" if ax is axes[0] else None
        )
    axes[0].set_xlabel("blob bytes")
    if measured:
        axes[1].set_xlabel("Cortex-M55 instructions (QEMU, not cycles)")
    for ax in axes:
        ax.set_ylabel("int8 accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(name)
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png", dpi=110)
    log(f"wrote {OUT / name}.csv and .png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="study", required=True)
    f = sub.add_parser("fashion")
    f.add_argument("--epochs", type=float, default=6)
    f.add_argument("--finetune", type=float, default=2)
    f.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.3, 0.2])
    f.add_argument(
        "--methods",
        nargs="+",
        help=f"fine-tune only these methods (default: {', '.join(DEFAULT_METHODS)}; "
        "also: 'dtmm greedy schedule')",
    )
    f.add_argument("--out", default="fashion_mnist", help="name of the CSV and plot")
    r = sub.add_parser("resnet8")
    r.add_argument("--calibration", type=int, default=50)
    r.add_argument("--sparsities", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7])
    v = sub.add_parser("vww")
    v.add_argument("--calibration", type=int, default=50)
    # the dense model already has 62% of its filterlets at zero
    v.add_argument("--sparsities", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.65, 0.7, 0.8])
    d = sub.add_parser("resnet8-distill")
    d.add_argument("--calibration", type=int, default=50)
    d.add_argument("--sparsities", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    d.add_argument("--steps", type=int, default=5000)
    d.add_argument("--lr", type=float, default=3e-4)
    d.add_argument("--allocation", choices=("uniform", "layer-adaptive"), default="layer-adaptive")
    d.add_argument(
        "--synthetic",
        type=int,
        default=1024,
        help="inputs synthesized from the dense model (dtmm.synthetic), half of each batch",
    )
    d.add_argument(
        "--synthetic-steps", type=int, default=800, help="optimizer steps per input batch"
    )
    d.add_argument("--seed", type=int, default=0, help="synthesis, augmentation and training seed")
    d.add_argument(
        "--students",
        type=int,
        default=3,
        help="students distilled with seeds seed, seed + 1, ... and averaged (dtmm.distill.soup)",
    )
    d.add_argument(
        "--features",
        choices=("relu", "add"),
        default="relu",
        help="intermediate outputs matched besides the logits: every ReLU's or the residual Adds'",
    )
    args = parser.parse_args()
    studies = {"fashion": fashion, "resnet8": resnet8, "vww": vww}
    studies["resnet8-distill"] = resnet8_distill
    studies[args.study](args)


if __name__ == "__main__":
    main()
