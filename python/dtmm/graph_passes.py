"""Exact graph rewrites applied before memory planning and compilation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _core
from .ir import Model, Op
from .sparsity_choice import check_sparse, choose_conv, op_mode

# Helium's fast sparse loop takes whole 16-byte vectors of input channels;
# its depthwise conv has fast loops for depths that are multiples of 8 (about
# half the instructions of its any-depth loop).
VECTOR = 16
DEPTHWISE_STEP = 8


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
    with the matching channels of what they feed, where that is exact.

    ``sparse`` is the compile mode (:func:`dtmm.compile`). Before a consumer
    stored in FWCS, as many dead channels are removed as leave C_in a
    multiple of 16 (when some number does): its filterlets are then whole
    vectors for Helium's fast loop, at one byte per kept filterlet for each
    dead channel left in (15 channels instead of 16 took the 32x32 layer of
    ResNet-8 at 50% from 372k to 606k instructions on the M55). Dense
    consumers lose every dead channel: the bytes are what dense storage is
    chosen for, except through a depthwise conv, where as many go as leave
    its depth a multiple of 8 (when some number does): the depthwise conv
    costs about twice the instructions at other depths (VWW with 10% of its
    filters pruned took 4.22 million M55 instructions with every dead
    channel removed, 3.22 million so, against 3.32 dense).

    A dead channel outputs a constant c. A consuming CONV_2D can drop that
    input channel exactly when c equals its input zero point (the channel
    then contributes nothing anywhere), or when its windows never leave the
    input (VALID padding or 1x1), so c contributes the same amount, folded
    into the bias, at every pixel. A PAD that fills with the zero point in
    between (ONNX's symmetric padding) is crossed when c is the zero point.
    So is a depthwise conv (depth multiplier 1), whose padding is the zero
    point too: its channel then outputs its own constant (its bias
    requantized), and goes as well when that constant can go from all its
    consumers (MobileNet's conv -> depthwise -> 1x1 conv chains). It is not
    exact (and not done) when the channel feeds anything else (ADD,
    concatenation, pooling, a model output) or a padded k > 1 conv with
    c != zero point, because border windows see the padding instead of c.
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
        removable = [
            c for c in dead if _removable(model, y_name, c, dead_filter_value(model, op, c))
        ]
        if not removable:
            continue
        if any(_stored_fwcs(model, conv, sparse) for conv in _convs_fed(model, y_name)):
            removable = removable[: _aligned_removal(w.shape[0], len(removable), VECTOR)]
        elif _feeds_depthwise(model, y_name):
            removable = removable[: _aligned_removal(w.shape[0], len(removable), DEPTHWISE_STEP)]
        if not removable:
            continue
        if out is None:
            out = model.copy()
        out = _drop_channels(out, op, removable)
    return out if out is not None else model


def _removable(model: Model, tensor: str, channel: int, value: int) -> bool:
    """Whether ``channel`` of ``tensor``, constant at ``value``, can be removed
    from everything that reads it (see :func:`remove_dead_filters`)."""
    consumers = model.consumers(tensor)
    if tensor in model.outputs or not consumers:
        return False
    zp = int(model.tensors[tensor].zero_point[0])
    for cons in consumers:
        if cons.inputs[0] != tensor:  # a weight or bias operand, not the data
            return False
        if cons.type == "PAD":
            # padding with the zero point, then convolutions: exact when the
            # channel is the zero point too (nothing left to contribute)
            if value != zp or not _pads_with(model, cons, zp):
                return False
        elif cons.type == "DEPTHWISE_CONV_2D":
            if value != zp or not _channelwise(model, cons):
                return False
            out = cons.outputs[0]
            if not _removable(model, out, channel, dead_filter_value(model, cons, channel)):
                return False
        elif cons.type == "CONV_2D":
            cw = model.tensors[cons.inputs[1]]
            cx = model.tensors[cons.inputs[0]]
            if cw.data is None or cw.shape[3] != cx.shape[3] or not _has_bias(cons):
                return False
            full_windows = cons.options.get("padding") == "VALID" or cw.shape[1:3] == (1, 1)
            if value != zp and not full_windows:
                return False
        else:
            return False
    return True


def _channelwise(model: Model, dw: Op) -> bool:
    """A depthwise conv whose output channel c reads input channel c alone,
    with constant weights and a bias."""
    return (
        dw.options.get("depth_multiplier", 1) == 1
        and model.tensors[dw.inputs[1]].data is not None
        and _has_bias(dw)
    )


def _has_bias(op: Op) -> bool:
    return len(op.inputs) > 2 and op.inputs[2] is not None


def _convs_fed(model: Model, tensor: str) -> list[Op]:
    """The convolutions that read ``tensor``'s channels, through a PAD or a
    depthwise conv in between."""
    convs = []
    for cons in model.consumers(tensor):
        if cons.type in ("PAD", "DEPTHWISE_CONV_2D"):
            convs += _convs_fed(model, cons.outputs[0])
        elif cons.type == "CONV_2D":
            convs.append(cons)
    return convs


def _stored_fwcs(model: Model, conv: Op, sparse: str | Mapping[str, str]) -> bool:
    """Whether ``conv`` will be stored in FWCS."""
    w = model.tensors[conv.inputs[1]]
    return choose_conv(w.data, op_mode(sparse, conv.name, conv.options)).kind == "fwcs"


def _feeds_depthwise(model: Model, tensor: str) -> bool:
    return any(c.type == "DEPTHWISE_CONV_2D" for c in model.consumers(tensor))


def _aligned_removal(channels: int, dead: int, vector: int) -> int:
    """How many of ``dead`` channels to remove: the most that leave a
    multiple of ``vector`` (from 20 channels with 6 dead, 4 for 16), or all
    of them when none does."""
    first = channels % vector
    if first > dead or channels - first < vector:
        return dead
    return first + (dead - first) // vector * vector


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


def _drop_channels(model: Model, op: Op, channels: list[int]) -> Model:
    """Remove output ``channels`` of ``op`` (a CONV_2D or a depthwise conv of
    ``model``, checked by :func:`_removable`) and their readers' channels."""
    op = next(o for o in model.ops if o.name == op.name)
    values = {c: dead_filter_value(model, op, c) for c in channels}
    w = model.tensors[op.inputs[1]]
    axis = 3 if op.type == "DEPTHWISE_CONV_2D" else 0
    keep = np.ones(w.shape[axis], dtype=bool)
    keep[channels] = False
    y_name = op.outputs[0]
    zp = int(model.tensors[y_name].zero_point[0])
    for cons in model.consumers(y_name):
        if cons.type == "PAD":  # narrows too; its convolutions lose the channels
            padded = model.tensors[cons.outputs[0]]
            padded.shape = padded.shape[:-1] + (int(keep.sum()),)
            for conv in model.consumers(cons.outputs[0]):
                _drop_inputs(model, conv, keep, {})
        elif cons.type == "DEPTHWISE_CONV_2D":
            model = _drop_channels(model, cons, channels)
        else:
            _drop_inputs(model, cons, keep, {c: v - zp for c, v in values.items() if v != zp})
    for name in [n for n in (op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None) if n]:
        t = model.tensors[name]
        t.data = np.ascontiguousarray(
            np.compress(keep, t.data, axis=axis if t.data.ndim > 1 else 0)
        )
        t.shape = t.data.shape
        if len(t.scale) > 1:
            t.scale, t.zero_point = t.scale[keep], t.zero_point[keep]
    y = model.tensors[y_name]
    y.shape = y.shape[:-1] + (int(keep.sum()),)
    return model


def _drop_inputs(model: Model, conv: Op, keep: np.ndarray, offsets: dict[int, int]) -> None:
    """Remove the input channels of ``conv`` not in ``keep``; a removed channel
    that sat ``offsets[c]`` above the zero point at every pixel (full windows)
    leaves its contribution in the bias."""
    cw, cb = model.tensors[conv.inputs[1]], model.tensors[conv.inputs[2]]
    delta = np.zeros(cw.shape[0], np.int64)
    for c, offset in offsets.items():
        delta += offset * cw.data[:, :, :, c].astype(np.int64).sum(axis=(1, 2))
    cb.data = (cb.data.astype(np.int64) + delta).astype(np.int32)
    cw.data = np.ascontiguousarray(cw.data[:, :, :, keep])
    cw.shape = cw.data.shape


def as_compiled(model: Model, sparse: str | Mapping[str, str] = "auto") -> Model:
    """``model`` with the rewrites :func:`dtmm.compile` applies before lowering
    under compile mode ``sparse`` (what the memory planner and the latency
    model must see too)."""
    check_sparse(sparse, {op.name for op in model.ops})
    return remove_dead_filters(fold_constants(model), sparse)
