"""One-shot magnitude pruning of a loaded model (no training needed).

Every function returns a new model with pruned weights set to exactly zero;
the compiler then stores them sparsely (FWCS for filterlets, blocks for
fully connected layers). ``sparsity`` is the fraction of units removed in
each layer: one number for all layers, or a dict from op name to fraction
(layers not in the dict are left alone).

Units: a *filterlet* is the C_in weights of one conv filter at one kernel
position; a *filter* is one whole output channel (the structured baseline);
a *weight* is a single weight (the unstructured baseline); an FC *block* is
``block`` consecutive input weights of one output unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .ir import Model, Op, Tensor

Sparsity = float | Mapping[str, float]


def _layer_sparsity(sparsity: Sparsity, op: Op) -> float | None:
    s = sparsity.get(op.name) if isinstance(sparsity, Mapping) else sparsity
    if s is None:
        return None
    if not 0.0 <= float(s) <= 1.0:
        raise ValueError(f"sparsity for '{op.name}' must be in [0, 1], got {s}")
    return float(s)


def _real_weights(w: Tensor) -> np.ndarray:
    """Weights in real units (int8 times the per-channel scale on axis 0)."""
    scale = w.scale.reshape((-1,) + (1,) * (w.data.ndim - 1)) if len(w.scale) > 1 else w.scale[0]
    return w.data.astype(np.float32) * scale


def _norm(units: np.ndarray, criterion: str, axis) -> np.ndarray:
    if criterion == "l2":
        return np.sqrt((units**2).sum(axis=axis))
    if criterion == "l1":
        return np.abs(units).sum(axis=axis)
    raise ValueError(f"criterion must be 'l2' or 'l1', got {criterion!r}")


def _prune_lowest(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the round(fraction * n) lowest scores (ties broken by order)."""
    n = int(round(fraction * scores.size))
    mask = np.zeros(scores.size, dtype=bool)
    if n > 0:
        mask[np.argsort(scores.reshape(-1), kind="stable")[:n]] = True
    return mask.reshape(scores.shape)


def _checked(model: Model, sparsity: Sparsity) -> Sparsity:
    if isinstance(sparsity, Mapping):
        for op in model.ops:
            if op.name in sparsity:
                _layer_sparsity(sparsity, op)
        unknown = sorted(set(sparsity) - {op.name for op in model.ops})
        if unknown:
            raise KeyError(f"no op named {unknown[0]!r} in the model")
    else:
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return sparsity


def _apply(
    model: Model,
    sparsity: Sparsity,
    op_types: tuple[str, ...],
    select: Callable[[Tensor, float], np.ndarray],
) -> Model:
    _checked(model, sparsity)
    out = model.copy()
    for op in out.ops:
        if op.type not in op_types:
            continue
        fraction = _layer_sparsity(sparsity, op)
        w = out.tensors[op.inputs[1]]
        if fraction is None or w.data is None:
            continue
        w.data = np.where(select(w, fraction), np.int8(0), w.data).astype(np.int8)
    return out


def layer_adaptive(model: Model, sparsity: float) -> dict[str, float]:
    """Per-layer filterlet fractions that together remove ``sparsity`` of all
    the filterlets of the model's CONV_2D layers, spread by layer-adaptive
    magnitude (LAMP, Lee et al., ICLR 2021, with filterlets as units): a
    filterlet's score is its squared norm over the sum of the squared norms
    of the filterlets of its layer that are at least as large, and the lowest
    scores go first, model-wide. A layer's largest filterlet scores 1, so no
    layer is emptied; a layer of few filterlets, each carrying much of it,
    keeps more of them than a uniform fraction would leave, and a layer
    whose filterlet norms are very uneven loses more."""
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    scores: dict[str, np.ndarray] = {}
    for op in model.ops:
        w = model.tensors[op.inputs[1]] if op.type == "CONV_2D" else None
        if w is None or w.data is None:
            continue
        norms = np.sort((_real_weights(w).astype(np.float64) ** 2).sum(axis=3).ravel())
        at_least = np.cumsum(norms[::-1])[::-1]
        scores[op.name] = np.divide(norms, at_least, out=np.ones_like(norms), where=at_least > 0)
    if not scores:
        raise ValueError("the model has no CONV_2D layer with constant weights to prune")
    every = np.sort(np.concatenate(list(scores.values())), kind="stable")
    n = int(round(float(sparsity) * every.size))
    if n == 0:
        return {name: 0.0 for name in scores}
    cut = every[n - 1]
    # Ties at the cut go layer by layer in model order, so exactly n are removed.
    ratios, left = {}, n
    for name, sc in scores.items():
        k = min(int((sc < cut).sum()), left)
        ratios[name], left = k, left - k
    for name, sc in scores.items():
        k = min(int((sc <= cut).sum()) - ratios[name], left)
        ratios[name], left = ratios[name] + k, left - k
    return {name: ratios[name] / scores[name].size for name in scores}


def filterlets(
    model: Model,
    sparsity: Sparsity,
    criterion: str = "l2",
    calibration: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
    allocation: str = "uniform",
) -> Model:
    """Remove the filterlets with the smallest norm in every CONV_2D layer.

    ``criterion="activation"`` needs ``calibration`` (representative inputs
    of the model, int8 or float as its input tensor is): each layer then
    drops, one at a time, the filterlet whose removal (with the rest of its
    filter re-optimised) least raises the error in reproducing the dense
    layer's output on those inputs, and its kept weights and bias are refit
    by least squares (see :mod:`dtmm.calibrated`).

    ``allocation="layer-adaptive"`` takes one number, the fraction of all the
    model's conv filterlets to remove, and spreads it over the layers by
    :func:`layer_adaptive`; "uniform" removes ``sparsity`` in every layer.
    """
    if allocation == "layer-adaptive":
        if isinstance(sparsity, Mapping):
            raise ValueError(
                "allocation='layer-adaptive' takes one model-wide sparsity, not a dict"
            )
        sparsity = layer_adaptive(model, sparsity)
    elif allocation != "uniform":
        raise ValueError(f"allocation must be 'uniform' or 'layer-adaptive', got {allocation!r}")
    if criterion == "activation":
        if calibration is None:
            raise ValueError("criterion='activation' needs calibration=<representative inputs>")
        from .calibrated import prune_filterlets

        return prune_filterlets(model, _checked(model, sparsity), calibration, progress=progress)
    if calibration is not None:
        raise ValueError(f"calibration= is used by criterion='activation', not {criterion!r}")

    def select(w: Tensor, fraction: float) -> np.ndarray:
        scores = _norm(_real_weights(w), criterion, axis=3)  # [C_out, KH, KW]
        return _prune_lowest(scores, fraction)[..., None]

    return _apply(model, sparsity, ("CONV_2D",), select)


def filters(model: Model, sparsity: Sparsity, criterion: str = "l2") -> Model:
    """Remove whole output channels (the structured baseline) of CONV_2D
    layers: weights and bias, so that the compiler removes each such channel
    outright wherever that is exact (as for the scheduler's filter options
    and ``dtmm.torch`` filter pruning)."""

    def select(w: Tensor, fraction: float) -> np.ndarray:
        scores = _norm(_real_weights(w), criterion, axis=(1, 2, 3))
        return _prune_lowest(scores, fraction)[:, None, None, None]

    out = _apply(model, sparsity, ("CONV_2D",), select)
    for op in out.ops:
        if op.type != "CONV_2D" or not _layer_sparsity(sparsity, op) or len(op.inputs) < 3:
            continue
        if op.inputs[2] is None:
            continue
        w, b = out.tensors[op.inputs[1]], out.tensors[op.inputs[2]]
        if w.data is None or b.data is None:
            continue
        gone = ~w.data.reshape(len(w.data), -1).any(axis=1)
        b.data = np.where(gone, 0, b.data).astype(b.data.dtype)
    return out


def weights(model: Model, sparsity: Sparsity) -> Model:
    """Remove individual weights by magnitude (the unstructured baseline) of
    CONV_2D and FULLY_CONNECTED layers."""

    def select(w: Tensor, fraction: float) -> np.ndarray:
        return _prune_lowest(np.abs(_real_weights(w)), fraction)

    return _apply(model, sparsity, ("CONV_2D", "FULLY_CONNECTED"), select)


def fc_blocks(model: Model, sparsity: Sparsity, block: int = 16, criterion: str = "l2") -> Model:
    """Remove blocks of ``block`` consecutive input weights per unit of
    FULLY_CONNECTED layers (the FC analogue of filterlets)."""

    def select(w: Tensor, fraction: float) -> np.ndarray:
        units, depth = w.shape
        per_row = -(-depth // block)
        real = np.zeros((units, per_row * block), np.float32)
        real[:, :depth] = _real_weights(w)
        scores = _norm(real.reshape(units, per_row, block), criterion, axis=2)
        keep_mask = np.repeat(_prune_lowest(scores, fraction), block, axis=1)[:, :depth]
        return keep_mask

    return _apply(model, sparsity, ("FULLY_CONNECTED",), select)
