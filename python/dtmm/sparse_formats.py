"""Encoders and decoders of dtmm's sparse weight formats (numpy side).

The byte layouts are defined in cpp/runtime/include/dtmm/format.h and
docs/format.md; these functions produce exactly those arrays.

FWCS (filterlet-wise compressed storage) for an OHWI conv filter
[C_out, KH, KW, C_in]: ``values`` int8 [kept, C_in] (kept filterlets in
(c_out, ky, kx) order) and ``mask`` uint8 [ceil(C_out * KH * KW / 8)] (one bit
per filterlet, LSB first). Index overhead: ceil(C_out * KH * KW / 8) bytes per
layer, i.e. 1 / (8 * density * C_in) of the kept value bytes (1.6% for
C_in = 16 at 50% density).

Block-sparse FC for weights [units, depth]: blocks of ``block`` consecutive
inputs per unit, mask bit per block, values int8 [kept, block] (a short last
block zero-padded).

CSR (the unstructured baseline): values int8 [nnz], columns uint16 [nnz],
row_ptr int32 [rows + 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FWCS:
    values: np.ndarray  # int8 [kept, C_in]
    mask: np.ndarray  # uint8 [ceil(bits / 8)]
    shape: tuple[int, int, int, int]  # the dense OHWI shape

    @property
    def kept(self) -> int:
        return int(self.values.shape[0])

    @property
    def index_bytes(self) -> int:
        return int(self.mask.nbytes)


def filterlet_mask(weights: np.ndarray) -> np.ndarray:
    """[C_out, KH, KW] bool: filterlets holding at least one nonzero weight."""
    return np.any(weights != 0, axis=3)


def fwcs_encode(weights: np.ndarray, keep: np.ndarray | None = None) -> FWCS:
    """Encode OHWI int8 ``weights``, keeping the filterlets where ``keep`` is true
    (by default those with a nonzero weight, so zeros from quantization count)."""
    if weights.ndim != 4 or weights.dtype != np.int8:
        raise ValueError(f"FWCS needs int8 OHWI weights, got {weights.dtype} {weights.shape}")
    keep = filterlet_mask(weights) if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != weights.shape[:3]:
        raise ValueError(f"filterlet mask shape {keep.shape} != {weights.shape[:3]}")
    values = weights[keep].reshape(-1, weights.shape[3])
    return FWCS(
        values.astype(np.int8),
        np.packbits(keep.reshape(-1), bitorder="little"),
        tuple(int(d) for d in weights.shape),
    )


def fwcs_decode(enc: FWCS) -> np.ndarray:
    """The dense OHWI weights, pruned filterlets as zeros."""
    o, kh, kw, c = enc.shape
    keep = np.unpackbits(enc.mask, count=o * kh * kw, bitorder="little").astype(bool)
    dense = np.zeros((o * kh * kw, c), np.int8)
    dense[keep] = enc.values
    return dense.reshape(enc.shape)


def block_encode(weights: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(values [kept, block], mask) for [units, depth] weights; blocks with a nonzero kept."""
    units, depth = weights.shape
    per_row = -(-depth // block)
    padded = np.zeros((units, per_row * block), np.int8)
    padded[:, :depth] = weights
    blocks = padded.reshape(units, per_row, block)
    keep = np.any(blocks != 0, axis=2)
    return blocks[keep].reshape(-1, block), np.packbits(keep.reshape(-1), bitorder="little")


def block_decode(
    values: np.ndarray, mask: np.ndarray, units: int, depth: int, block: int
) -> np.ndarray:
    per_row = -(-depth // block)
    keep = np.unpackbits(mask, count=units * per_row, bitorder="little").astype(bool)
    blocks = np.zeros((units * per_row, block), np.int8)
    blocks[keep] = values
    return blocks.reshape(units, per_row * block)[:, :depth]


def csr_encode(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values int8, columns uint16, row_ptr int32) of a 2-D int8 matrix's nonzeros."""
    if rows.shape[1] > 65536:
        raise ValueError(f"CSR columns are uint16: rows of {rows.shape[1]} weights are too long")
    r, c = np.nonzero(rows)
    row_ptr = np.zeros(rows.shape[0] + 1, np.int32)
    np.cumsum(np.bincount(r, minlength=rows.shape[0]), out=row_ptr[1:])
    return rows[r, c].astype(np.int8), c.astype(np.uint16), row_ptr


def csr_decode(values: np.ndarray, cols: np.ndarray, row_ptr: np.ndarray, width: int) -> np.ndarray:
    dense = np.zeros((len(row_ptr) - 1, width), np.int8)
    for i in range(len(row_ptr) - 1):
        dense[i, cols[row_ptr[i] : row_ptr[i + 1]]] = values[row_ptr[i] : row_ptr[i + 1]]
    return dense
