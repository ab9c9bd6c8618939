"""Per-layer choice between dense and sparse kernels (the compiler's cost model).

Predicted work of a conv per output pixel, in multiply-accumulates plus a
per-visited-unit overhead: dense visits every weight; FWCS visits the kept
filterlets (each a C_in-long dot product, plus the mask bit test and pointer
step, counted as ``FILTERLET_OVERHEAD`` MACs); CSR visits every nonzero with
its index decode (``CSR_OVERHEAD`` MACs each). "auto" picks FWCS when it is
both smaller in bytes and predicted no slower than dense.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .sparse_formats import filterlet_mask

FILTERLET_OVERHEAD = 4.0
CSR_OVERHEAD = 2.0
MODES = ("auto", "always", "never", "csr")


@dataclass
class ConvChoice:
    kind: str  # "dense", "fwcs" or "csr"
    kept_fraction: float
    dense_bytes: int
    sparse_bytes: int
    dense_work: float
    sparse_work: float


def check_sparse(sparse: str | Mapping[str, str], op_names: set[str]) -> None:
    """Reject a compile mode that is not one of MODES, or a per-layer dict
    naming an op the model does not have."""
    modes = list(sparse.values()) if isinstance(sparse, Mapping) else [sparse]
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"sparse must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(sparse, Mapping):
        unknown = sorted(set(sparse) - op_names)
        if unknown:
            raise KeyError(f"sparse= names {unknown[0]!r}, which is not an op of the model")


def op_mode(sparse: str | Mapping[str, str], name: str, options: dict) -> str:
    """The mode one op compiles with: its entry of a per-layer dict ("auto"
    when unlisted), then the scheduler's recorded storage (layer_mode)."""
    mode = sparse.get(name, "auto") if isinstance(sparse, Mapping) else sparse
    return layer_mode(options, mode)


def layer_mode(options: dict, mode: str) -> str:
    """The mode for one layer: under "auto", a storage the scheduler recorded
    in the op's options ("dense" or "sparse") wins over the cost model."""
    if mode == "auto":
        return {"dense": "never", "sparse": "always"}.get(options.get("storage", ""), mode)
    return mode


def choose_conv(weights: np.ndarray, mode: str) -> ConvChoice:
    """Dense or sparse for an OHWI int8 conv filter under compile mode ``mode``."""
    o, kh, kw, c = weights.shape
    keep = filterlet_mask(weights)
    kept = int(keep.sum())
    dense_bytes = weights.size
    fwcs_bytes = kept * c + -(-(o * kh * kw) // 8)
    dense_work = float(weights.size)
    fwcs_work = kept * (c + FILTERLET_OVERHEAD)
    choice = ConvChoice("dense", kept / keep.size, dense_bytes, fwcs_bytes, dense_work, fwcs_work)
    if mode == "never":
        return choice
    if mode == "csr":
        nnz = int(np.count_nonzero(weights))
        choice.kind = "csr"
        choice.sparse_bytes = nnz * 3 + 4 * (o + 1)
        choice.sparse_work = nnz * (1 + CSR_OVERHEAD)
        return choice
    if mode == "always" or (fwcs_bytes < dense_bytes and fwcs_work <= dense_work):
        choice.kind = "fwcs"
    return choice


def choose_fc(weights: np.ndarray, mode: str, block: int = 16) -> str:
    """ "dense", "block" or "csr" for [units, depth] int8 FC weights."""
    if mode == "never":
        return "dense"
    if mode == "csr":
        return "csr"
    units, depth = weights.shape
    per_row = -(-depth // block)
    padded = np.zeros((units, per_row * block), np.int8)
    padded[:, :depth] = weights
    kept = int(np.any(padded.reshape(units, per_row, block) != 0, axis=2).sum())
    block_bytes = kept * block + -(-(units * per_row) // 8)
    if mode == "always" or block_bytes < weights.size:
        return "block"
    return "dense"
