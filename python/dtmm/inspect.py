"""dtmm.inspect: what a compiled blob holds, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass

from . import _core

_STORAGE = {
    "CONV_2D": "dense",
    "DEPTHWISE_CONV_2D": "dense",
    "FULLY_CONNECTED": "dense",
    "CONV_2D_FWCS": "FWCS",
    "FULLY_CONNECTED_BLOCK": "block",
    "CONV_2D_CSR": "CSR",
    "FULLY_CONNECTED_CSR": "CSR",
}


@dataclass(frozen=True)
class LayerInfo:
    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    storage: str  # dense, FWCS, block, CSR, or "-" for ops without weights
    value_bytes: int  # weight values stored
    index_bytes: int  # sparse index (mask, columns, row pointers)
    kept_fraction: float  # stored weights / dense weights
    activation_bytes: int  # input + output activations


@dataclass(frozen=True)
class BlobReport:
    layers: list[LayerInfo]
    blob_bytes: int
    arena_bytes: int

    @property
    def value_bytes(self) -> int:
        return sum(layer.value_bytes for layer in self.layers)

    @property
    def index_bytes(self) -> int:
        return sum(layer.index_bytes for layer in self.layers)

    def __str__(self) -> str:
        head = (
            f"{'op':<22} {'output':<16} {'storage':<7} {'values':>8} {'index':>7} "
            f"{'kept':>6} {'act. bytes':>10}  name"
        )
        lines = [head, "-" * len(head)]
        for r in self.layers:
            kept = f"{r.kept_fraction:6.1%}" if r.storage != "-" else "     -"
            lines.append(
                f"{r.op:<22} {str(list(r.output_shape)):<16} {r.storage:<7} {r.value_bytes:>8,} "
                f"{r.index_bytes:>7,} {kept} {r.activation_bytes:>10,}  {r.name}"
            )
        lines.append(
            f"blob {self.blob_bytes:,} bytes (weights {self.value_bytes:,}, sparse index "
            f"{self.index_bytes:,}); arena {self.arena_bytes:,} bytes"
        )
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython
        p.text(str(self))


def inspect(blob: bytes) -> BlobReport:
    """Per-layer table of a compiled blob: op, shapes, dense/FWCS/block/CSR
    storage, value and index bytes, kept fraction, activation bytes. Printing
    the result gives a readable table."""
    core = _core.Interpreter(bytes(blob), False, False)
    tensors = core.tensors()
    layers = []
    for op in core.ops():
        kind = op["type"]
        ins = [tensors[i] if i >= 0 else None for i in op["inputs"]]
        out = tensors[op["outputs"][0]]
        x = ins[0]
        storage = _STORAGE.get(kind, "-")
        values = index = 0
        kept = 1.0
        if storage != "-":
            w = ins[1]
            values = _prod(w["shape"])
            dense = _prod(op.get("dense_shape", w["shape"]))
            if kind in ("CONV_2D_FWCS", "FULLY_CONNECTED_BLOCK"):
                index = ins[2]["bytes"]
                if kind == "FULLY_CONNECTED_BLOCK":  # short last blocks are zero-padded
                    units, depth = op["dense_shape"]
                    block = w["shape"][1]
                    values = min(values, w["shape"][0] * block)
                    dense = units * (-(-depth // block)) * block
            elif kind.endswith("_CSR"):
                index = ins[2]["bytes"] + ins[3]["bytes"]
            kept = values / dense if dense else 0.0
        act = sum(t["bytes"] for t in ins if t is not None and not t["constant"]) + out["bytes"]
        layers.append(
            LayerInfo(
                op["name"],
                kind,
                tuple(x["shape"]) if x else (),
                tuple(out["shape"]),
                storage,
                values,
                index,
                kept,
                act,
            )
        )
    return BlobReport(layers, len(blob), core.arena_size)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
