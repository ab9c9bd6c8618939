"""dtmm.schedule: per-layer pruning ratios under flash, SRAM and accuracy budgets.

The problem: choose, for every CONV_2D layer, a fraction of filterlets to
prune (and, for layers whose output feeds only convolutions, a fraction of
whole filters, which the compiler removes physically) so that predicted
Cortex-M55 instructions are minimal while the compiled blob fits ``flash``,
the arena fits ``sram`` and accuracy drops by at most ``max_accuracy_drop``.

How:

1. The calibration inputs are split in two: one half fits the pruning
   (activation statistics, least-squares refit: :mod:`dtmm.calibrated`), the
   other measures it (held apart from the fit).
2. Sensitivity: every option of every layer is applied alone and the KL
   divergence of the outputs from the dense model's measured with the
   bit-exact runtime.
3. Costs of each option: instructions from the fitted latency model
   (:mod:`dtmm.latency`), weight bytes, activation bytes.
4. Search over the additive model. ``method="dp"`` (dtmm's): Lagrangian
   relaxation of the flash and SRAM budgets and an exact dynamic program over
   the discretised loss budget, optimal for the additive model.
   ``method="anneal"``: simulated annealing over per-layer ratios with
   penalties, the approach of the DTMM paper, kept for comparison.
5. The loss budget is then bisected on real measurements: each candidate is
   pruned jointly, compiled (exact blob bytes and arena) and evaluated; the
   fastest one within every budget wins.

``objective="accuracy"`` skips 2-5 and returns the least lossy schedule
within flash and SRAM, for pruning that fine-tuning will follow.
``method="greedy"``: :func:`search_greedy` prunes step by step, measuring
each candidate step on the whole pruned model. ``method="layer-adaptive"``:
one model-wide filterlet fraction spread by layer-adaptive magnitude
(:func:`dtmm.prune.layer_adaptive`), the least that fits flash; it measures
nothing before fine-tuning, whose outcome the loss before it predicts poorly.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import latency, prune
from .compiler import compile as compile_model
from .ir import Model, Op
from .memory import plan_memory
from .runtime import Runtime

FILTERLET_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FILTER_RATIOS = (0.25, 0.5, 0.75)


class BudgetError(ValueError):
    """A budget cannot be met; the message says which and by how much."""


@dataclass(frozen=True)
class Option:
    filterlets: float = 0.0  # fraction of the layer's filterlets pruned
    filters: float = 0.0  # fraction of its whole filters pruned
    storage: str = "dense"  # "dense" (zeros kept) or "sparse" (FWCS)


@dataclass
class _Cost:
    instructions: float  # predicted for the layer (and what it saves downstream)
    weight_bytes: float  # change of the compiled blob against dense (measured)
    activation_bytes: float
    loss: float = 0.0


@dataclass
class LayerReport:
    name: str
    filterlets: float
    filters: float
    kernel: str
    instructions: float


@dataclass
class ScheduleReport:
    method: str
    layers: list[LayerReport]
    blob_bytes: int
    arena_bytes: int
    instructions: float  # predicted Cortex-M55 instructions (not cycles)
    accuracy: float
    dense_blob_bytes: int
    dense_arena_bytes: int
    dense_instructions: float
    dense_accuracy: float
    metric: str  # "accuracy" (labels) or "top-1 agreement with the dense model"
    seconds: float
    budgets: dict[str, float | None] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"dtmm.schedule ({self.method}): {self.metric} {self.accuracy:.2%} "
            f"(dense {self.dense_accuracy:.2%}), blob {self.blob_bytes:,} B "
            f"(dense {self.dense_blob_bytes:,}), arena {self.arena_bytes:,} B "
            f"(dense {self.dense_arena_bytes:,}), predicted M55 instructions "
            f"{self.instructions:,.0f} (dense {self.dense_instructions:,.0f}) "
            f"in {self.seconds:.0f} s",
            f"  {'layer':<44}{'filterlets':>11}{'filters':>9}  {'kernel':<18}{'instr.':>12}",
        ]
        for r in self.layers:
            lines.append(
                f"  {r.name[-44:]:<44}{r.filterlets:>11.0%}{r.filters:>9.0%}  "
                f"{r.kernel:<18}{r.instructions:>12,.0f}"
            )
        return "\n".join(lines)


@dataclass
class ScheduleResult:
    model: Model
    report: ScheduleReport


def _say(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda msg: print(f"dtmm.schedule: {msg}", file=sys.stderr, flush=True)
    return lambda msg: None


# ---- the model side: layers, options, applying them, measuring them


def _free_output(model: Model, op: Op) -> bool:
    """Whether the op's output feeds only convolutions (so whole filters can go)."""
    y = op.outputs[0]
    users = model.consumers(y)
    return bool(users) and y not in model.outputs and all(u.type == "CONV_2D" for u in users)


def _layers(model: Model) -> list[Op]:
    return [
        op for op in model.ops if op.type == "CONV_2D" and model.tensors[op.inputs[1]].is_constant
    ]


def _options(model: Model, op: Op) -> list[Option]:
    opts = [Option(r, 0.0) for r in FILTERLET_RATIOS]
    opts += [Option(r, 0.0, "sparse") for r in FILTERLET_RATIOS if r > 0]
    w = model.tensors[op.inputs[1]]
    if _free_output(model, op) and w.shape[1:3] != (1, 1):  # a 1x1 filterlet is a filter
        for f in FILTER_RATIOS:  # filterlet ratios count the removed filters' filterlets
            opts.append(Option(0.0, f))
            for r in (r for r in FILTERLET_RATIOS if r > f):
                opts += [Option(r, f), Option(r, f, "sparse")]
    return opts


def apply_options(
    model: Model, choice: dict[str, Option], fit_inputs: np.ndarray | None, criterion: str
) -> Model:
    """Prune ``model`` as ``choice`` says: whole filters first (their bias
    zeroed, so that the compiler can remove them exactly), then filterlets."""
    filters = {k: o.filters for k, o in choice.items() if o.filters > 0}
    out = prune.filters(model, filters) if filters else model.copy()
    for name in filters:
        op = next(o for o in out.ops if o.name == name)
        w = out.tensors[op.inputs[1]].data
        dead = ~(w != 0).reshape(len(w), -1).any(axis=1)
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            b = out.tensors[op.inputs[2]]
            b.data = np.where(dead, 0, b.data).astype(np.int32)
    filterlets = {k: o.filterlets for k, o in choice.items() if o.filterlets > 0}
    if filterlets:
        if criterion == "activation":
            out = prune.filterlets(out, filterlets, criterion="activation", calibration=fit_inputs)
        else:
            out = prune.filterlets(out, filterlets, criterion=criterion)
    for op in out.ops:  # the storage the costs assumed; dtmm.compile's "auto" keeps it
        if op.name in choice:
            op.options["storage"] = choice[op.name].storage
    return out


class _Evaluator:
    """Runs candidate models on the held-apart inputs with the bit-exact runtime."""

    def __init__(self, model: Model, x: np.ndarray, labels: np.ndarray | None) -> None:
        self.x = x
        self.labels = labels
        self.out_t = model.tensors[model.outputs[0]]
        self.dense = self.probabilities(model)

    def probabilities(self, model: Model) -> np.ndarray:
        out = Runtime(compile_model(model, sparse="never")).run(self.x)
        out = out[0] if isinstance(out, list) else out
        t = self.out_t
        real = out.astype(np.float64).reshape(len(self.x), -1)
        if t.dtype == np.int8:
            real = (real - float(t.zero_point[0])) * float(t.scale[0])
        if np.all(real >= -1e-6) and np.allclose(real.sum(axis=1), 1.0, atol=0.05):
            return np.clip(real, 1e-4, 1.0)  # already probabilities (a softmax output)
        e = np.exp(real - real.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def divergence(self, p: np.ndarray) -> float:
        """KL(dense || p): how far the outputs moved from the dense model's. A
        layer's sensitivity, with or without labels: unlike the change in
        cross-entropy, it is zero only when the outputs did not move, and a
        pruning that happens to fit the labels a little better does not look
        free."""
        return max(float((self.dense * np.log(self.dense / p)).sum(axis=1).mean()), 0.0)

    def score(self, p: np.ndarray) -> float:
        """Accuracy with labels, else top-1 agreement with the dense model."""
        ref = self.labels if self.labels is not None else self.dense.argmax(axis=1)
        return float((p.argmax(axis=1) == ref).mean())

    def drop(self, p: np.ndarray) -> float:
        """The score's drop from the dense model's, plus two standard errors
        of that paired difference (the square root of the number of samples
        whose outcome changed, over the sample count). The search tries about
        a dozen candidates on a few held-apart samples and keeps the fastest
        that passes: without a margin it keeps one that passed by luck (on
        ResNet-8 with 50 samples, a schedule within a 2% drop there lost 11
        points on unseen images; with one standard error, one within 5% did)."""
        ref = self.labels if self.labels is not None else self.dense.argmax(axis=1)
        before = self.dense.argmax(axis=1) == ref
        after = p.argmax(axis=1) == ref
        lost, gained = int((before & ~after).sum()), int((~before & after).sum())
        return (lost - gained + 2.0 * math.sqrt(lost + gained)) / len(ref)


# ---- costs


def _layer_cost(model: Model, op: Op, opt: Option, lm: latency.LatencyModel) -> _Cost:
    """Predicted instructions and activation bytes of a layer under an option,
    plus the instructions filter removal saves in its consumers (their input
    channels go too). Blob bytes are measured, by :func:`_measure_bytes`."""
    w = model.tensors[op.inputs[1]]
    o, kh, kw, c = w.shape
    y = model.tensors[op.outputs[0]]
    kept_filters = o - int(round(opt.filters * o))
    kept = int(round((1 - max(opt.filterlets, opt.filters)) * o * kh * kw))
    base = latency.layer_shape(model, op, "never")
    one = (kh, kw) == (1, 1)
    if opt.storage == "sparse":
        kind = "CONV_2D_FWCS_1x1" if one else "CONV_2D_FWCS"
    else:
        kind = "CONV_2D_1x1" if one else "CONV_2D"
    shape = latency.LayerShape(
        kind, base.in_elements, base.out_h, base.out_w, c, kept_filters, kh, kw, kept
    )
    instr = lm.predict_layer(shape)
    act = float(np.prod(y.shape[:-1])) * kept_filters
    if opt.filters > 0:
        # What the next conv saves depends on its own option, which this additive
        # model cannot see: credit the least it can be (the consumer pruned as far
        # as it goes).
        least = 1.0 - max(FILTERLET_RATIOS)
        for cons in model.consumers(op.outputs[0]):
            cs = latency.layer_shape(model, cons, "never")
            narrow = latency.LayerShape(
                cs.kind,
                cs.in_elements * kept_filters // o,
                cs.out_h,
                cs.out_w,
                kept_filters,
                cs.c_out,
                cs.kh,
                cs.kw,
                cs.kept,
            )
            instr += least * (lm.predict_layer(narrow) - lm.predict_layer(cs))
    return _Cost(instr, 0.0, act)


# ---- search over the additive model


@dataclass
class _Table:
    names: list[str]
    options: list[list[Option]]
    costs: list[list[_Cost]]

    def totals(self, pick: list[int]) -> tuple[float, float, float, float]:
        cs = [self.costs[i][j] for i, j in enumerate(pick)]
        return (
            sum(c.instructions for c in cs),
            sum(c.weight_bytes for c in cs),
            sum(c.activation_bytes for c in cs),
            sum(c.loss for c in cs),
        )


def search_dp(
    table: _Table, loss_budget: float, bytes_budget: float, act_weight: float = 0.0, bins: int = 400
) -> list[int] | None:
    """Minimal instructions with total loss <= loss_budget and weight bytes <=
    bytes_budget: Lagrangian on bytes (bisection on lambda), exact DP on loss."""

    def solve(lam: float) -> list[int] | None:
        step = max(loss_budget, 1e-9) / bins
        inf = math.inf
        best = np.full(bins + 1, inf)
        best[0] = 0.0
        back: list[np.ndarray] = []
        for costs in table.costs:
            new = np.full(bins + 1, inf)
            arg = np.full(bins + 1, -1, np.int64)
            for j, c in enumerate(costs):
                q = int(math.ceil(max(c.loss, 0.0) / step - 1e-9))
                if q > bins:
                    continue
                value = c.instructions + lam * c.weight_bytes + act_weight * c.activation_bytes
                cand = np.full(bins + 1, inf)
                cand[q:] = best[: bins + 1 - q] + value
                better = cand < new
                new[better] = cand[better]
                arg[better] = j
            back.append(arg)
            best = new
        end = int(np.argmin(best))
        if not np.isfinite(best[end]):
            return None
        pick = []
        for i in range(len(table.costs) - 1, -1, -1):
            j = int(back[i][end])
            pick.append(j)
            q = int(math.ceil(max(table.costs[i][j].loss, 0.0) / step - 1e-9))
            end -= q
        return pick[::-1]

    pick = solve(0.0)
    if pick is None or table.totals(pick)[1] <= bytes_budget:
        return pick
    lo, hi = 0.0, 1.0
    while True:  # find a lambda that makes bytes fit
        pick = solve(hi)
        if pick is None:
            return None
        if table.totals(pick)[1] <= bytes_budget:
            break
        lo, hi = hi, hi * 4
        if hi > 1e12:
            return None
    best = pick
    for _ in range(40):
        mid = (lo + hi) / 2
        pick = solve(mid)
        if pick is not None and table.totals(pick)[1] <= bytes_budget:
            best, hi = pick, mid
        else:
            lo = mid
    return best


def search_anneal(
    table: _Table,
    loss_budget: float,
    bytes_budget: float,
    seed: int = 0,
    steps: int = 20000,
    act_weight: float = 0.0,
) -> list[int] | None:
    """Simulated annealing over per-layer options with penalty terms (the DTMM
    paper's search), for comparison with :func:`search_dp`."""
    rng = np.random.default_rng(seed)
    dense_instr = table.totals([0] * len(table.names))[0]

    def energy(pick: list[int]) -> tuple[float, bool]:
        instr, wbytes, act, loss = table.totals(pick)
        over = max(0.0, loss - loss_budget) / max(loss_budget, 1e-9)
        over += max(0.0, wbytes - bytes_budget) / max(abs(bytes_budget), 1.0)
        return instr + act_weight * act + 10 * dense_instr * over, over == 0.0

    pick = [0] * len(table.names)
    e, ok = energy(pick)
    best, best_e = (list(pick), e) if ok else (None, math.inf)
    t0 = 0.1 * dense_instr
    for k in range(steps):
        t = t0 * (1 - k / steps) + 1e-9
        i = int(rng.integers(len(pick)))
        cand = list(pick)
        cand[i] = int(np.clip(cand[i] + rng.choice((-2, -1, 1, 2)), 0, len(table.options[i]) - 1))
        ce, cok = energy(cand)
        if ce <= e or rng.random() < math.exp(-(ce - e) / t):
            pick, e = cand, ce
            if cok and ce < best_e:
                best, best_e = list(cand), ce
    return best


def search_greedy(
    table: _Table,
    joint_loss: Callable[[list[int]], float],
    bytes_budget: float,
    act_budget: float,
    lookahead: int = 3,
    say: Callable[[str], None] = lambda msg: None,
) -> list[int]:
    """Least joint loss within the byte (and activation) budgets, greedily:
    from the unpruned model, each step takes, over every layer's next
    ``lookahead`` smaller options, the move with the least increase in the
    loss of the whole pruned model per unit of budget excess it frees. Unlike the
    additive model, every step is measured jointly, so interactions between
    layers count. Returns the pick (which may still miss the budgets when no
    move frees anything)."""
    # Per layer, options by weight bytes, largest first; each storage only
    # where it is the smaller for its ratios.
    chains = []
    for costs in table.costs:
        order = sorted(range(len(costs)), key=lambda j: -costs[j].weight_bytes)
        chains.append([0] + [j for j in order if j != 0])
    pick = [0] * len(table.costs)
    loss = joint_loss(pick)

    def excess(p: list[int]) -> tuple[float, float]:
        _, wb, ab, _ = table.totals(p)
        return max(wb - bytes_budget, 0.0), max(ab - act_budget, 0.0)

    while True:
        over_b, over_a = excess(pick)
        if over_b <= 0 and over_a <= 0:
            return pick
        best = None
        for i, costs in enumerate(table.costs):
            now = costs[pick[i]]
            steps = [
                j
                for j in chains[i]
                if costs[j].weight_bytes < now.weight_bytes
                or costs[j].activation_bytes < now.activation_bytes
            ]
            for j in steps[:lookahead]:
                gain = 0.0
                if over_b > 0:
                    gain += min(now.weight_bytes - costs[j].weight_bytes, over_b) / over_b
                if over_a > 0:
                    gain += min(now.activation_bytes - costs[j].activation_bytes, over_a) / over_a
                if gain <= 0:
                    continue
                trial = pick.copy()
                trial[i] = j
                trial_loss = joint_loss(trial)
                # A step that happens to lower the loss is as good as a free
                # one; among free steps the one freeing more goes first.
                rank = (max(trial_loss - loss, 0.0) / gain, -gain)
                if best is None or rank < best[0]:
                    best = (rank, trial, trial_loss)
        if best is None:
            return pick
        _, pick, loss = best
        say(f"greedy: loss {loss:.4f}, {over_b:,.0f} B over flash before this step")


def search_layer_adaptive(
    size: Callable[[float], int], flash: int, say: Callable[[str], None] = lambda msg: None
) -> float:
    """The least model-wide filterlet sparsity whose blob (``size(s)``
    bytes, not increasing in s) fits ``flash``, to within 1e-4 by bisection;
    raises :class:`BudgetError` when not even 99% fits."""
    lo, hi = 0.0, 0.99
    if size(lo) <= flash:
        return lo
    if size(hi) > flash:
        raise BudgetError(
            f"flash: with 99% of the filterlets pruned the blob is {size(hi):,} B, "
            f"{size(hi) - flash:,} B over the {flash:,} B budget"
        )
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        if size(mid) <= flash:
            hi = mid
        else:
            lo = mid
        say(f"layer-adaptive: {hi:.2%} of the filterlets fit {flash:,} B")
    return hi


# ---- the driver


def _measure_bytes(model: Model, table: _Table, dense_bytes: int) -> None:
    """Each option's weight_bytes: what it changes in the compiled blob when
    applied alone (values, index, folded bias, tables: exact; negative saves)."""
    for name, opts, costs in zip(table.names, table.options, table.costs):
        for opt, cost in zip(opts, costs):
            if opt != Option():
                size = len(compile_model(apply_options(model, {name: opt}, None, "l2")))
                cost.weight_bytes = size - dense_bytes


def _check_reachable(model: Model, table: _Table, flash: int | None, sram: int | None) -> None:
    """Fail fast when even the most pruned schedule misses flash or SRAM."""
    if flash is None and sram is None:
        return
    smallest = {
        name: min(opts, key=lambda o, i=i: table.costs[i][opts.index(o)].weight_bytes)
        for i, (name, opts) in enumerate(zip(table.names, table.options))
    }
    narrowest = {
        name: max(opts, key=lambda o: o.filters) for name, opts in zip(table.names, table.options)
    }
    what = []
    if flash is not None:
        size = len(compile_model(apply_options(model, smallest, None, "l2")))
        if size > flash:
            what.append(
                f"flash: the smallest blob the scheduler can reach is {size:,} B, "
                f"{size - flash:,} B over the {flash:,} B budget"
            )
    if sram is not None:
        arena = plan_memory(apply_options(model, narrowest, None, "l2")).arena_size
        if arena > sram:
            what.append(
                f"SRAM: the smallest arena the scheduler can reach is {arena:,} B, "
                f"{arena - sram:,} B over the {sram:,} B budget (filterlet pruning does not "
                "shrink activations; only filters feeding convolutions can go)"
            )
    if what:
        raise BudgetError("; ".join(what))


@dataclass
class _Job:
    """One schedule() call: the model, its data and budgets, the dense
    baseline, and the steps every search shares."""

    model: Model
    layers: list[Op]
    fit_x: np.ndarray
    evaluator: _Evaluator
    criterion: str
    method: str
    flash: int | None
    sram: int | None
    max_accuracy_drop: float
    labelled: bool
    say: Callable[[str], None]
    start: float
    dense_blob: bytes = field(init=False)
    dense_arena: int = field(init=False)
    dense_score: float = field(init=False)
    dense_instr: float = field(init=False)

    def __post_init__(self) -> None:
        self.dense_blob = compile_model(self.model)
        self.dense_arena = plan_memory(self.model).arena_size
        self.dense_score = self.evaluator.score(self.evaluator.dense)
        self.dense_instr = sum(r.instructions for r in latency.predict(self.model))

    def fits(self, blob: bytes, arena: int) -> bool:
        return (self.flash is None or len(blob) <= self.flash) and (
            self.sram is None or arena <= self.sram
        )

    def realise(
        self, table: _Table, pick: list[int]
    ) -> tuple[Model, bytes, int, float, float, float]:
        """The pruned model, blob, arena, predicted instructions, score and
        (conservative) drop of a pick."""
        choice = {table.names[i]: table.options[i][j] for i, j in enumerate(pick) if j}
        pruned = apply_options(self.model, choice, self.fit_x, self.criterion)
        blob = compile_model(pruned)
        arena = plan_memory(pruned).arena_size
        instr = sum(r.instructions for r in latency.predict(pruned))
        p = self.evaluator.probabilities(pruned)
        return pruned, blob, arena, instr, self.evaluator.score(p), self.evaluator.drop(p)

    def report(
        self,
        pruned: Model,
        blob: bytes,
        arena: int,
        instr: float,
        score: float,
        ratios: list[tuple[float, float]],
    ) -> ScheduleResult:
        """The result, with each layer's (filterlet, filter) fractions from ``ratios``."""
        predicted = {r.name: r for r in latency.predict(pruned)}
        rows = [
            LayerReport(
                op.name,
                *ratios[i],
                predicted[op.name].kind if op.name in predicted else "-",
                predicted[op.name].instructions if op.name in predicted else 0.0,
            )
            for i, op in enumerate(self.layers)
        ]
        result = ScheduleReport(
            self.method,
            rows,
            len(blob),
            arena,
            instr,
            score,
            len(self.dense_blob),
            self.dense_arena,
            self.dense_instr,
            self.dense_score,
            "accuracy" if self.labelled else "top-1 agreement with the dense model",
            time.time() - self.start,
            {"flash": self.flash, "sram": self.sram, "max_accuracy_drop": self.max_accuracy_drop},
        )
        self.say(f"done in {result.seconds:.0f} s")
        return ScheduleResult(pruned, result)


def schedule(
    model: Model,
    flash: int | None = None,
    sram: int | None = None,
    calibration: tuple[np.ndarray, np.ndarray | None] | np.ndarray | None = None,
    max_accuracy_drop: float = 0.01,
    seed: int = 0,
    method: str | None = None,
    criterion: str = "activation",
    objective: str = "latency",
    progress: bool | Callable[[str], None] = True,
) -> ScheduleResult:
    """Prune ``model`` for the fastest predicted Cortex-M55 inference within
    ``flash`` bytes of blob, ``sram`` bytes of arena and ``max_accuracy_drop``
    (a fraction: 0.01 = one point) on held-apart calibration data.

    ``calibration`` is ``(inputs, labels)``, or ``(inputs, None)`` / inputs
    alone to keep the outputs close to the dense model's (top-1 agreement).
    ``criterion`` is "activation" (calibrated, with reconstruction) or "l2".
    ``method`` is the latency search, "dp" (default) or "anneal" (the DTMM
    paper's). ``objective="accuracy"`` instead returns the least lossy
    schedule that meets flash and SRAM, for pruning that fine-tuning will
    follow (``max_accuracy_drop`` is then not enforced, only reported), with
    ``method="layer-adaptive"`` (default: filterlets only, one model-wide
    fraction spread by :func:`dtmm.prune.layer_adaptive`; fast, and after
    fine-tuning the more accurate on Fashion-MNIST, see docs/accuracy.md)
    or ``"greedy"`` (every step measured on the whole pruned model; it can
    remove filters, so it can also shrink the arena for ``sram``).
    Raises :class:`BudgetError` when a budget cannot be met, naming it and
    the shortfall.
    """
    if objective not in ("latency", "accuracy"):
        raise ValueError(f"objective must be 'latency' or 'accuracy', got {objective!r}")
    methods = ("dp", "anneal") if objective == "latency" else ("layer-adaptive", "greedy")
    method = methods[0] if method is None else method
    if method not in methods:
        raise ValueError(
            f"with objective={objective!r}, method must be {' or '.join(map(repr, methods))}, "
            f"got {method!r}"
        )
    if not 0.0 <= max_accuracy_drop <= 1.0:
        raise ValueError(f"max_accuracy_drop is a fraction in [0, 1], got {max_accuracy_drop}")
    if calibration is None:
        raise ValueError("schedule needs calibration=(inputs, labels) or (inputs, None)")
    x, labels = calibration if isinstance(calibration, tuple) else (calibration, None)
    x = np.asarray(x)
    if len(x) < 4:
        raise ValueError(f"calibration has {len(x)} samples; schedule needs at least 4")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"calibration has {len(x)} inputs but {len(labels)} labels")
    say = _say(progress)
    start = time.time()

    order = np.random.default_rng(seed).permutation(len(x))
    fit_idx, val_idx = np.sort(order[: len(x) // 2]), np.sort(order[len(x) // 2 :])
    evaluator = _Evaluator(
        model, x[val_idx], None if labels is None else np.asarray(labels)[val_idx]
    )
    job = _Job(
        model,
        _layers(model),
        x[fit_idx],
        evaluator,
        criterion,
        method,
        flash,
        sram,
        max_accuracy_drop,
        labels is not None,
        say,
        start,
    )
    if method == "layer-adaptive":
        return _schedule_layer_adaptive(job)

    lm = latency.load()
    table = _Table(
        [op.name for op in job.layers],
        [_options(model, op) for op in job.layers],
        [[_layer_cost(model, op, opt, lm) for opt in _options(model, op)] for op in job.layers],
    )
    if flash is not None:
        _measure_bytes(model, table, len(job.dense_blob))
    _check_reachable(model, table, flash, sram)
    if objective == "accuracy":
        best, closest = _least_loss(job, table)
    else:
        _measure_sensitivities(job, table)
        best, closest = _fastest(job, table, seed)
    if best is None:
        found = (
            f"the most accurate schedule that fits drops {closest[1]:.2%} "
            f"(measured drop plus two standard errors; {closest[0]:,} B blob, "
            f"{closest[2]:,} B arena)"
            if closest
            else "none fits"
        )
        raise BudgetError(
            f"accuracy: no schedule meets flash={flash}, sram={sram} within "
            f"max_accuracy_drop={max_accuracy_drop:.2%}; {found}"
        )
    pruned, blob, arena, instr, score, pick = best
    ratios = [(o[j].filterlets, o[j].filters) for o, j in zip(table.options, pick)]
    return job.report(pruned, blob, arena, instr, score, ratios)


# A schedule found: (pruned model, blob, arena, instructions, score, pick);
# and the blob bytes, drop and arena of the most accurate pick that fits.
_Best = tuple[Model, bytes, int, float, float, list[int]]
_Closest = tuple[int, float, int]


def _schedule_layer_adaptive(job: _Job) -> ScheduleResult:
    """One model-wide filterlet fraction, spread by layer-adaptive
    magnitude: the least that fits flash."""
    model, flash = job.model, job.flash
    if job.sram is not None and job.dense_arena > job.sram:
        raise BudgetError(
            f"SRAM: the arena is {job.dense_arena:,} B, {job.dense_arena - job.sram:,} B over "
            f"the {job.sram:,} B budget; method='layer-adaptive' prunes filterlets only, which "
            "leave activations as they are (method='greedy' can remove filters)"
        )

    def pruned_at(sparsity: float, how: str) -> Model:
        fit = job.fit_x if how == "activation" else None
        return prune.filterlets(model, sparsity, how, calibration=fit, allocation="layer-adaptive")

    sparsity = 0.0
    if flash is not None:
        sparsity = search_layer_adaptive(
            lambda v: len(compile_model(pruned_at(v, "l2"))), flash, job.say
        )
    pruned = pruned_at(sparsity, job.criterion)
    blob = compile_model(pruned)
    # The criterion picks other filterlets than "l2" did, which can empty
    # (and so remove) other filters: prune on a filterlet at a time.
    total = sum(int(np.prod(model.tensors[op.inputs[1]].shape[:3])) for op in job.layers)
    while flash is not None and len(blob) > flash:
        if sparsity >= 0.99:
            raise BudgetError(
                f"flash: at {sparsity:.2%} of the filterlets the blob is {len(blob):,} B, "
                f"{len(blob) - flash:,} B over the {flash:,} B budget"
            )
        sparsity = min(sparsity + 1.0 / total, 0.99)
        pruned = pruned_at(sparsity, job.criterion)
        blob = compile_model(pruned)
    shares = prune.layer_adaptive(model, sparsity)
    return job.report(
        pruned,
        blob,
        plan_memory(pruned).arena_size,
        sum(r.instructions for r in latency.predict(pruned)),
        job.evaluator.score(job.evaluator.probabilities(pruned)),
        [(shares[op.name], 0.0) for op in job.layers],
    )


def _least_loss(job: _Job, table: _Table) -> tuple[_Best | None, _Closest | None]:
    """objective="accuracy", method="greedy": the least loss within flash
    and SRAM, measured jointly step by step (the additive model's sum of
    single-layer losses is a poor guide when every layer must be pruned hard)."""
    flash_budget = math.inf if job.flash is None else job.flash - len(job.dense_blob)
    sram_act = math.inf
    if job.sram is not None and job.dense_arena > job.sram:
        sram_act = table.totals([0] * len(table.names))[2] * job.sram / job.dense_arena

    def joint_loss(pick: list[int]) -> float:
        choice = {table.names[i]: table.options[i][j] for i, j in enumerate(pick) if j}
        pruned = apply_options(job.model, choice, job.fit_x, job.criterion)
        return job.evaluator.divergence(job.evaluator.probabilities(pruned))

    for _ in range(12):
        pick = search_greedy(table, joint_loss, flash_budget, sram_act, say=job.say)
        pruned, blob, arena, instr, score, drop = job.realise(table, pick)
        job.say(f"greedy: blob {len(blob):,} B, arena {arena:,} B, {score:.2%}")
        if job.fits(blob, arena):
            return (pruned, blob, arena, instr, score, pick), (len(blob), drop, arena)
        if job.flash is not None and len(blob) > job.flash:
            flash_budget -= len(blob) - job.flash  # the estimate was short
        if job.sram is not None and arena > job.sram:
            sram_act = table.totals(pick)[2] * job.sram / arena
    return None, None


def _measure_sensitivities(job: _Job, table: _Table) -> None:
    """Each option's loss when applied alone: the additive model of the
    latency search."""
    done = 0
    total = sum(len({(o.filterlets, o.filters) for o in opts}) - 1 for opts in table.options)
    for op, opts, costs in zip(job.layers, table.options, table.costs):
        measured: dict[tuple[float, float], float] = {(0.0, 0.0): 0.0}
        for opt, cost in zip(opts, costs):
            key = (opt.filterlets, opt.filters)
            if key not in measured:  # the storage does not change the outputs
                done += 1
                job.say(f"sensitivity {done}/{total}: {op.name[-40:]} {key}")
                pruned = apply_options(job.model, {op.name: opt}, job.fit_x, job.criterion)
                measured[key] = job.evaluator.divergence(job.evaluator.probabilities(pruned))
            cost.loss = measured[key]


def _fastest(job: _Job, table: _Table, seed: int) -> tuple[_Best | None, _Closest | None]:
    """objective="latency": the loss budget of the additive search bisected
    on measurements of whole pruned models; the fastest that meets every
    budget wins."""
    flash_budget = math.inf if job.flash is None else job.flash - len(job.dense_blob)
    # Filterlet pruning leaves the arena alone; only removing filters shrinks
    # activations. When the dense arena is over budget, weigh activation bytes.
    act_weight = 0.0
    if job.sram is not None and job.dense_arena > job.sram:
        act_weight = 10.0 * job.dense_instr / job.dense_arena

    def search(loss_budget: float, bytes_budget: float) -> list[int] | None:
        if job.method == "dp":
            return search_dp(table, loss_budget, bytes_budget, act_weight)
        return search_anneal(table, loss_budget, bytes_budget, seed, act_weight=act_weight)

    best: _Best | None = None
    closest: _Closest | None = None
    # the most any loss budget could buy: is flash/SRAM reachable at all?
    max_loss = sum(max(c.loss for c in costs) for costs in table.costs) + 1.0
    # The least loss budget under which the search meets the (estimated) flash
    # budget; from there the loss budget is bisected geometrically.
    lo = 1e-4
    while lo < max_loss and search(lo, flash_budget) is None:
        lo *= 2
    below = lo / 2
    for _ in range(10):  # narrow it down: the least lossy feasible schedule is found at lo
        mid = (below + lo) / 2
        if search(mid, flash_budget) is None:
            below = mid
        else:
            lo = mid
    hi = max_loss
    for it in range(12):
        budget = lo if it == 0 else math.sqrt(lo * hi)
        pick = search(budget, flash_budget)
        if pick is None:
            lo = budget
            continue
        pruned, blob, arena, instr, score, drop = job.realise(table, pick)
        fits = job.fits(blob, arena)
        accurate = drop <= job.max_accuracy_drop + 1e-12
        job.say(
            f"loss budget {budget:.4f}: blob {len(blob):,} B, arena {arena:,} B, "
            f"{score:.2%}, {instr:,.0f} instr."
        )
        if fits and (closest is None or drop < closest[1]):
            closest = (len(blob), drop, arena)
        if job.flash is not None and len(blob) > job.flash:
            # The additive byte estimate was short: ask for less than this
            # pick's estimate by the overshoot, so the next search moves on.
            estimate = table.totals(pick)[1]
            flash_budget = min(flash_budget, estimate) - (len(blob) - job.flash)
            continue
        if fits and accurate:
            if best is None or instr < best[3]:
                best = (pruned, blob, arena, instr, score, pick)
            lo = budget
        elif it == 0:
            break  # the least lossy schedule that fits is already too inaccurate
        else:
            hi = budget
    if best is None:
        # Every pruning option looked cheap on the fitting half, but together
        # they cost too much: the unpruned model still meets a loss budget of
        # zero when it fits flash and SRAM.
        pick = [0] * len(table.names)
        pruned, blob, arena, instr, score, drop = job.realise(table, pick)
        if job.fits(blob, arena) and drop <= job.max_accuracy_drop + 1e-12:
            best = (pruned, blob, arena, instr, score, pick)
    return best, closest
