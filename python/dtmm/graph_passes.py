"""Exact graph rewrites applied before memory planning and compilation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _core
from .ir import Model, Op
from .sparsity_choice import check_sparse, choose_conv, op_mode

# Helium's fast sparse loop takes whole 16-byte vectors of input channels.
VECTOR = 16


def fold_constants(model: Model) -> Model:
    """Replace RESHAPE of a constant by a reshaped constant (nothing left to run)."""
    if not any(
        op.type == "RESHAPE" and op.inputs[0] and model.tensors[op.inputs[0]].is_constant
        for op in model.ops
    ):
        return model
    model = model.copy()
    kept = []
    for op in model.ops:
        src = model.tensors[op.inputs[0]] if op.inputs and op.inputs[0] else None
        if op.type == "RESHAPE" and src is not None and src.is_constant:
            out = model.tensors[op.outputs[0]]
            out.data = src.data.reshape(out.shape)
        else:
            kept.append(op)
    model.ops = kept
    return model


def _round_half_away(v: float) -> int:
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


def _activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized (float32 division, as the builder)."""

    def q(f: float) -> int:
        return zero_point + _round_half_away(float(np.float32(f) / np.float32(scale)))

    lo, hi = -128, 127
    if activation in ("RELU", "RELU6"):
        lo = max(lo, q(0.0))
    if activation == "RELU6":
        hi = min(hi, q(6.0))
    if activation == "RELU_N1_TO_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


def dead_filter_value(model: Model, op: Op, channel: int) -> int:
    """The constant int8 output of a CONV_2D channel whose weights are all zero:
    the requantized bias through the fused activation, computed exactly as the
    runtime does."""
    x, w, y = (
        model.tensors[op.inputs[0]],
        model.tensors[op.inputs[1]],
        model.tensors[op.outputs[0]],
    )
    bias = 0
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        bias = int(model.tensors[op.inputs[2]].data[channel])
    w_scale = float(w.scale[channel] if len(w.scale) > 1 else w.scale[0])
    real = float(
        np.float64(np.float32(x.scale[0]))
        * np.float64(np.float32(w_scale))
        / np.float64(np.float32(y.scale[0]))
    )
    q, shift = _core.weight_multiplier(real, model.rounding == "onnx")
    acc = _core.multiply_by_quantized_multiplier(bias, q, shift) + int(y.zero_point[0])
    lo, hi = _activation_range(
        op.options.get("activation", "NONE"), float(y.scale[0]), int(y.zero_point[0])
    )
    return min(max(acc, lo), hi)


def remove_dead_filters(model: Model, sparse: str | Mapping[str, str] = "auto") -> Model:
    """Physically remove CONV_2D output channels whose weights are all zero,
    with the matching input channels of their consumers, where that is exact.

    ``sparse`` is the compile mode (:func:`dtmm.compile`). Before a consumer
    stored in FWCS, as many dead channels are removed as leave C_in a
    multiple of 16 (when some number does): its filterlets are then whole
    vectors for Helium's fast loop, at one byte per kept filterlet for each
    dead channel left in (15 channels instead of 16 took the 32x32 layer of
    ResNet-8 at 50% from 372k to 606k instructions on the M55). Dense
    consumers lose every dead channel: the bytes are what dense storage is
    chosen for.

    A dead channel outputs a constant c. A consuming CONV_2D can drop that
    input channel exactly when c equals its input zero point (the channel
    then contributes nothing anywhere), or when its windows never leave the
    input (VALID padding or 1x1), so c contributes the same amount, folded
    into the bias, at every pixel. A PAD that fills with the zero point in
    between (ONNX's symmetric padding) is crossed when c is the zero point.
    It is not exact (and not done) when the
    channel feeds anything else (ADD, concatenation, pooling, depthwise, a
    model output) or a padded k > 1 conv with c != zero point, because border
    windows see the padding instead of c.
    """
    out = None
    for op in model.ops:
        if op.type != "CONV_2D":
            continue
        w = model.tensors[op.inputs[1]]
        x = model.tensors[op.inputs[0]]
        if w.data is None or w.shape[3] != x.shape[3]:
            continue
        dead = [c for c in range(w.shape[0]) if not np.any(w.data[c])]
        if not dead or len(dead) == w.shape[0]:
            continue
        y_name = op.outputs[0]
        consumers = model.consumers(y_name)
        if y_name in model.outputs or not consumers:
            continue
        removable = []
        for c in dead:
            value = dead_filter_value(model, op, c)
            ok = True
            for cons in consumers:
                if cons.type == "PAD":
                    # padding with the zero point, then convolutions: exact when the
                    # channel is the zero point too (nothing left to contribute)
                    zp = int(model.tensors[y_name].zero_point[0])
                    if value != zp or not _pads_with(model, cons, zp):
                        ok = False
                        break
                    continue
                cw = model.tensors[cons.inputs[1]] if cons.type == "CONV_2D" else None
                if (
                    cons.type != "CONV_2D"
                    or cons.inputs[0] != y_name
                    or cw is None
                    or cw.data is None
                ):
                    ok = False
                    break
                cx = model.tensors[cons.inputs[0]]
                if cw.shape[3] != cx.shape[3]:
                    ok = False
                    break
                full_windows = cons.options.get("padding") == "VALID" or cw.shape[1:3] == (1, 1)
                if value != int(cx.zero_point[0]) and not full_windows:
                    ok = False
                    break
            if ok:
                removable.append((c, value))
        if not removable:
            continue
        if any(_stored_fwcs(model, cons, sparse) for cons in _convs_fed(model, consumers)):
            removable = removable[: _aligned_removal(w.shape[0], len(removable))]
            if not removable:
                continue
        if out is None:
            out = model.copy()
        out = _drop_channels(out, op.name, removable)
    return out if out is not None else model


def _convs_fed(model: Model, consumers: list[Op]) -> list[Op]:
    """The convolutions among ``consumers``, through a PAD in between."""
    convs = []
    for cons in consumers:
        convs += model.consumers(cons.outputs[0]) if cons.type == "PAD" else [cons]
    return convs


def _stored_fwcs(model: Model, conv: Op, sparse: str | Mapping[str, str]) -> bool:
    """Whether ``conv`` will be stored in FWCS."""
    w = model.tensors[conv.inputs[1]]
    return choose_conv(w.data, op_mode(sparse, conv.name, conv.options)).kind == "fwcs"


def _aligned_removal(channels: int, dead: int) -> int:
    """How many of ``dead`` channels to remove before an FWCS consumer: the
    most that leave a multiple of 16 (from 20 channels with 6 dead, 4),
    or all of them when none does."""
    first = channels % VECTOR
    if first > dead or channels - first < VECTOR:
        return dead
    return first + (dead - first) // VECTOR * VECTOR


def _pads_with(model: Model, pad: Op, zp: int) -> bool:
    """A PAD that fills with ``zp`` and feeds only unpadded-input convolutions."""
    if pad.options.get("value", zp) != zp or pad.options["pads"][-1] != (0, 0):
        return False
    users = model.consumers(pad.outputs[0])
    return (
        bool(users)
        and pad.outputs[0] not in model.outputs
        and all(
            u.type == "CONV_2D"
            and u.inputs[0] == pad.outputs[0]
            and model.tensors[u.inputs[1]].data is not None
            and model.tensors[u.inputs[1]].shape[3] == model.tensors[u.inputs[0]].shape[3]
            for u in users
        )
    )


def _drop_channels(model: Model, op_name: str, removable: list[tuple[int, int]]) -> Model:
    op = next(o for o in model.ops if o.name == op_name)
    w = model.tensors[op.inputs[1]]
    keep = np.ones(w.shape[0], dtype=bool)
    keep[[c for c, _ in removable]] = False
    y_name = op.outputs[0]
    for pad in [c for c in model.consumers(y_name) if c.type == "PAD"]:
        padded = model.tensors[pad.outputs[0]]  # narrows too; its convolutions lose the channels
        padded.shape = padded.shape[:-1] + (int(keep.sum()),)
    for cons in _convs_fed(model, model.consumers(y_name)):
        cw = model.tensors[cons.inputs[1]]
        zp = int(model.tensors[y_name].zero_point[0])
        if len(cons.inputs) < 3 or cons.inputs[2] is None:
            raise AssertionError("consumers checked by remove_dead_filters carry a bias")
        cb = model.tensors[cons.inputs[2]]
        delta = np.zeros(cw.shape[0], np.int64)
        for c, value in removable:
            if value != zp:  # full windows: the constant meets every tap of the channel
                delta += (value - zp) * cw.data[:, :, :, c].astype(np.int64).sum(axis=(1, 2))
        cb.data = (cb.data.astype(np.int64) + delta).astype(np.int32)
        cw.data = np.ascontiguousarray(cw.data[:, :, :, keep])
        cw.shape = cw.data.shape
    for name in [n for n in (op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None) if n]:
        t = model.tensors[name]
        t.data = np.ascontiguousarray(t.data[keep])
        t.shape = t.data.shape
        if len(t.scale) > 1:
            t.scale, t.zero_point = t.scale[keep], t.zero_point[keep]
    y = model.tensors[y_name]
    y.shape = y.shape[:-1] + (int(keep.sum()),)
    return model


def as_compiled(model: Model, sparse: str | Mapping[str, str] = "auto") -> Model:
    """``model`` with the rewrites :func:`dtmm.compile` applies before lowering
    under compile mode ``sparse`` (what the memory planner and the latency
    model must see too)."""
    check_sparse(sparse, {op.name for op in model.ops})
    return remove_dead_filters(fold_constants(model), sparse)
