"""Offline memory planning: arena offsets for every activation.

Lifetimes are counted in half-steps so that they match the loader's check:
op k reads its inputs and writes its outputs at 2k+1, model inputs are live
from -1 and model outputs until 2n. RESHAPE outputs alias their inputs.
Buffers are placed greedily, largest first, at the lowest offset that does
not collide with a buffer whose lifetime overlaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .graph_passes import as_compiled
from .ir import Model

ALIGN = 16  # every activation starts on a 16-byte boundary (vector loads)


@dataclass
class MemoryPlan:
    offsets: dict[str, int]  # tensor name -> arena offset
    arena_size: int  # bytes the runtime needs
    lower_bound: int  # largest sum of simultaneously live activations
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)  # per storage root


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def alias_roots(model: Model) -> dict[str, str]:
    """Map each activation to the tensor whose storage it shares."""
    root: dict[str, str] = {}

    def find(t: str) -> str:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for op in model.ops:
        src = op.inputs[0] if op.inputs else None
        if op.type == "RESHAPE" and src is not None and not model.tensors[src].is_constant:
            root[op.outputs[0]] = find(src)
    return {t: find(t) for t in model.tensors if not model.tensors[t].is_constant}


def plan_memory(model: Model, sparse: str | Mapping[str, str] = "auto") -> MemoryPlan:
    """Plan the arena for ``model`` as :func:`dtmm.compile` with ``sparse``
    will lay it out (the mode decides which dead channels are removed)."""
    return plan_compiled(as_compiled(model, sparse))


def plan_compiled(model: Model) -> MemoryPlan:
    """The arena plan of a model the compiler's rewrites have already been
    applied to (:func:`dtmm.graph_passes.as_compiled`)."""
    roots = alias_roots(model)
    n = len(model.ops)
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    for t in model.inputs:
        start[roots[t]] = -1
    for k, op in enumerate(model.ops):
        for t in op.inputs:
            if t is not None and t in roots:
                r = roots[t]
                end[r] = max(end.get(r, -1), 2 * k + 1)
        for t in op.outputs:
            r = roots[t]
            start.setdefault(r, 2 * k + 1)
            end[r] = max(end.get(r, -1), 2 * k + 1)
    for t in model.outputs:
        end[roots[t]] = 2 * n
    size: dict[str, int] = {}
    for t, r in roots.items():
        if r in start:
            size[r] = max(size.get(r, 0), model.tensors[t].nbytes)

    # Greedy first-fit placement is sensitive to the order; try a few
    # orders and keep the smallest arena (deterministic, and cheap: the
    # graphs have tens of buffers).
    orders = [
        sorted(size, key=lambda r: (-size[r], start[r])),
        sorted(size, key=lambda r: (start[r], -size[r])),
        sorted(size, key=lambda r: (-size[r] * (end[r] - start[r] + 1), start[r])),
        sorted(size, key=lambda r: (-(end[r] - start[r]), -size[r], start[r])),
    ]
    best: dict[str, int] | None = None
    arena = 0
    for order in orders:
        placed: list[tuple[int, int, str]] = []  # (offset, size, root)
        offsets: dict[str, int] = {}
        for r in order:
            clashes = sorted(
                (o, s) for o, s, q in placed if start[q] <= end[r] and start[r] <= end[q]
            )
            candidate = 0
            for o, s in clashes:
                if candidate + size[r] <= o:
                    break
                candidate = max(candidate, _align(o + s))
            offsets[r] = candidate
            placed.append((candidate, size[r], r))
        total = max((o + s for o, s, _ in placed), default=0)
        if best is None or total < arena:
            best, arena = offsets, total
    offset_of = best or {}

    lower_bound = 0
    for k in range(n):
        step = 2 * k + 1
        live = sum(size[r] for r in size if start[r] <= step <= end[r])
        lower_bound = max(lower_bound, live)
    offsets = {t: offset_of[r] for t, r in roots.items() if r in offset_of}
    lifetimes = {r: (start[r], end[r]) for r in size}
    return MemoryPlan(offsets, _align(arena), lower_bound, lifetimes)
