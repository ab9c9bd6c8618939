"""Activation-aware pruning with layer-wise reconstruction (no training code).

For each CONV_2D layer, in execution order:

1. Its real-valued input patches are taken twice from calibration inputs run
   through the bit-exact runtime: ``X_d`` from the dense model (what the layer
   should see) and ``X_p`` from the model pruned so far (what it will see).
2. The target is the dense layer's pre-activation output ``T = X_d w + b``.
3. Filterlets are removed one at a time, greedily over the whole layer, each
   time the one whose removal raises the layer's reconstruction error least
   once the rest of its filter is re-optimised (Optimal Brain Surgeon for a
   group of weights: the rise is ``w_g^T [(H^-1)_gg]^-1 w_g`` with ``H`` the
   ridge-regularised ``X_p^T X_p``, and the weights and ``H^-1`` are updated
   in closed form after each removal). A filter's removals depend only on
   its own state, so each filter's removal order and costs are computed once
   and the layer-wide greedy choice is a merge of them.
4. The kept weights (and the bias, through a constant input column) are refit
   by ridge least squares so that ``X_p w' + b'`` matches ``T``: this corrects
   the pruned taps, the mean shift (bias correction) and the error carried in
   from earlier pruned layers, and sparsity is never lost (pruned taps stay 0).
5. Weights are requantized to int8 per channel, the bias to int32 at the new
   ``input_scale * weight_scale``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

import numpy as np

from .ir import Model, Op, Tensor

Progress = Callable[[str], None] | None


def conv_patches(x: np.ndarray, op: Op, w_shape: tuple[int, ...]) -> np.ndarray:
    """im2col of real NHWC activations for a CONV_2D: [N*OH*OW, KH*KW*C] in
    (ky, kx, c) order, the order of an OHWI filter flattened per output."""
    n, h, w, c = x.shape
    _, kh, kw, _ = w_shape
    sh, sw = op.options.get("stride", (1, 1))
    dh, dw = op.options.get("dilation", (1, 1))
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if op.options.get("padding", "VALID") == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        ph = max((oh - 1) * sh + ekh - h, 0)
        pw = max((ow - 1) * sw + ekw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - ekh) // sh + 1, (w - ekw) // sw + 1
    cols = [
        x[:, ky * dh : ky * dh + (oh - 1) * sh + 1 : sh, kx * dw : kx * dw + (ow - 1) * sw + 1 : sw]
        for ky in range(kh)
        for kx in range(kw)
    ]
    return np.concatenate(cols, axis=3).reshape(n * oh * ow, kh * kw * c)


def layer_inputs(model: Model, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Real-valued activations of tensors ``names`` for inputs ``x``, computed
    by the bit-exact runtime (the model is compiled with them as extra outputs)."""
    from .compiler import compile as compile_model
    from .runtime import Runtime

    probe = model.copy()
    extra = [n for n in dict.fromkeys(names) if n not in probe.outputs]
    probe.outputs = probe.outputs + extra
    outs = Runtime(compile_model(probe, sparse="never")).run(x)
    outs = outs if isinstance(outs, list) else [outs]
    by_name = dict(zip(probe.outputs, outs))
    result = {}
    for name in names:
        t = model.tensors[name]
        q = by_name[name]
        if t.dtype == np.int8:
            result[name] = (q.astype(np.float32) - float(t.zero_point[0])) * float(t.scale[0])
        else:
            result[name] = q.astype(np.float32)
    return result


def _removal_path(
    hinv: np.ndarray, weights: np.ndarray, alive: np.ndarray, c: int
) -> list[tuple[int, float]]:
    """One filter's filterlets in greedy OBS removal order, each with the
    rise in reconstruction error its removal costs: [(tap, cost)]. ``hinv``
    is the inverse regularised Gram matrix of the layer's input columns (the
    last one the bias), ``weights`` the filter's [taps * c + 1] weights."""
    hinv = hinv.copy()
    w = weights.copy()

    def cost(t: int) -> float:
        cols = slice(t * c, (t + 1) * c)
        return float(w[cols] @ np.linalg.solve(hinv[cols, cols], w[cols]))

    def remove(t: int) -> None:
        nonlocal hinv, w
        cols = slice(t * c, (t + 1) * c)
        block = hinv[cols, cols]
        w = w - hinv[:, cols] @ np.linalg.solve(block, w[cols])
        hinv = hinv - hinv[:, cols] @ np.linalg.solve(block, hinv[cols, :])
        w[cols] = 0.0

    kept = list(np.flatnonzero(alive))
    for t in np.flatnonzero(~alive):  # already pruned: removed first, at no charge
        remove(int(t))
    path = []
    while kept:
        costs = [cost(int(t)) for t in kept]
        best = int(np.argmin(costs))
        t = int(kept.pop(best))
        remove(t)
        path.append((t, costs[best]))
    return path


def _obs_keep(
    g: np.ndarray, w_b: np.ndarray, alive: np.ndarray, c: int, n_prune: int, ridge: float
) -> np.ndarray:
    """The filterlets [O, KK] kept after removing ``n_prune`` (already pruned
    ones included) in layer-wide greedy OBS order."""
    reg = ridge * max(float(np.mean(np.diag(g))), 1e-12)
    hinv = np.linalg.inv(g + reg * np.eye(len(g)))
    paths = [_removal_path(hinv, w_b[f], alive[f], c) for f in range(len(w_b))]
    keep = alive.copy()
    heap = [(path[0][1], f, 0) for f, path in enumerate(paths) if path]
    heapq.heapify(heap)
    for _ in range(n_prune - int((~alive).sum())):
        _, f, i = heapq.heappop(heap)
        keep[f, paths[f][i][0]] = False
        if i + 1 < len(paths[f]):
            heapq.heappush(heap, (paths[f][i + 1][1], f, i + 1))
    return keep


def _refit(
    g: np.ndarray, cross: np.ndarray, prior: np.ndarray, keep_cols: np.ndarray, ridge: float
) -> tuple[np.ndarray, float]:
    """Least squares on the kept columns (the last one is the bias), pulled
    towards the original weights ``prior`` so that a few calibration samples
    correct the pruning error without refitting the whole filter to them."""
    idx = np.flatnonzero(keep_cols)
    gk = g[np.ix_(idx, idx)]
    reg = ridge * max(float(np.mean(np.diag(gk))), 1e-12)
    sol = np.linalg.solve(gk + reg * np.eye(len(idx)), cross[idx] + reg * prior[idx])
    full = np.zeros(g.shape[0])
    full[idx] = sol
    return full[:-1], float(full[-1])


def prune_filterlets(
    model: Model,
    sparsity: float | Mapping[str, float],
    calibration: np.ndarray,
    reconstruct: bool = True,
    ridge: float = 1e-2,
    progress: Progress = None,
) -> Model:
    """Filterlet pruning driven by calibration activations; see the module doc."""
    out = model.copy()
    convs = [op for op in out.ops if op.type == "CONV_2D" and out.tensors[op.inputs[1]].is_constant]
    fractions = {
        op.name: (sparsity.get(op.name) if isinstance(sparsity, Mapping) else sparsity)
        for op in convs
    }
    todo = [op for op in convs if fractions[op.name]]
    if not todo:
        return out
    inputs = [op.inputs[0] for op in todo]
    dense_acts = layer_inputs(model, calibration, inputs)
    for i, op in enumerate(todo):
        if progress:
            progress(f"[{i + 1}/{len(todo)}] {op.name}: {fractions[op.name]:.0%} of filterlets")
        pruned_acts = layer_inputs(out, calibration, [op.inputs[0]]) if i else dense_acts
        _prune_layer(
            out,
            op,
            float(fractions[op.name]),
            conv_patches(dense_acts[op.inputs[0]], op, out.tensors[op.inputs[1]].shape),
            conv_patches(pruned_acts[op.inputs[0]], op, out.tensors[op.inputs[1]].shape),
            reconstruct,
            ridge,
        )
    return out


def _prune_layer(
    model: Model,
    op: Op,
    fraction: float,
    x_dense: np.ndarray,
    x_pruned: np.ndarray,
    reconstruct: bool,
    ridge: float,
) -> None:
    wt = model.tensors[op.inputs[1]]
    o, kh, kw, c = wt.shape
    kk = kh * kw
    x_t = model.tensors[op.inputs[0]]
    in_scale = float(x_t.scale[0])
    w_scale = np.broadcast_to(wt.scale.astype(np.float64), (o,))
    w_real = wt.data.reshape(o, -1).astype(np.float64) * w_scale[:, None]
    bias_name = op.inputs[2] if len(op.inputs) > 2 else None
    bias_t = model.tensors[bias_name] if bias_name is not None else None
    b_real = (
        bias_t.data.astype(np.float64) * in_scale * w_scale if bias_t is not None else np.zeros(o)
    )
    alive = (wt.data.reshape(o, kk, c) != 0).any(axis=2)  # filterlets not pruned already
    n_prune = int(round(fraction * o * kk))
    if n_prune <= int((~alive).sum()):
        return  # the layer is already as sparse as asked: leave it bit-identical
    xp = np.hstack([x_pruned, np.ones((len(x_pruned), 1), np.float32)]).astype(np.float64)
    g = xp.T @ xp
    keep = _obs_keep(g, np.hstack([w_real, b_real[:, None]]), alive, c, n_prune, ridge)

    new_w = w_real.copy()
    new_b = b_real.copy()
    if reconstruct:
        target = x_dense.astype(np.float64) @ w_real.T + b_real  # [P, O]
        cross = xp.T @ target  # [cols + 1, O]
        for f in range(o):
            cols = np.append(np.repeat(keep[f], c), True)
            prior = np.append(w_real[f], b_real[f])
            new_w[f], new_b[f] = _refit(g, cross[:, f], prior, cols, ridge)
    new_w = new_w * np.repeat(keep, c, axis=1)

    # requantize: symmetric per channel, the bias at input_scale * weight_scale
    # keep each channel's scale unless its refit weights outgrow it: re-rounding
    # every weight to a new grid would add noise for nothing
    peak = np.abs(new_w).max(axis=1)
    scale = np.where(peak > 127.0 * w_scale, peak / 127.0, w_scale)
    q = np.clip(np.round(new_w / scale[:, None]), -127, 127).astype(np.int8)
    wt.data = q.reshape(o, kh, kw, c)
    wt.scale = scale.astype(np.float32)
    wt.zero_point = np.zeros(o, np.int64)
    bias = np.round(new_b / (in_scale * scale))
    if bias_t is None:
        name = op.outputs[0] + "/bias"
        bias_t = Tensor(name, (o,), np.dtype(np.int32))
        model.tensors[name] = bias_t
        op.inputs[2:] = [name]
    bias_t.data = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)
    bias_t.scale = (in_scale * scale).astype(np.float32)
    bias_t.zero_point = np.zeros(o, np.int64)
