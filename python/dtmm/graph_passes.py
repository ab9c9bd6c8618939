"""Exact graph rewrites applied before memory planning and compilation."""

from __future__ import annotations

from .ir import Model


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
