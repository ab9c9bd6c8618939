"""Predicted Cortex-M55 instruction counts of dtmm's kernels.

A linear model per kernel, fitted to instruction counts measured under QEMU
(``dtmm.device``) over a grid of random single-op layers: shapes, strides and
densities (dense, FWCS at several kept fractions, block-sparse FC). The
features are what the kernels loop over: output pixels, outputs, 16-byte
vector dot products, kept filterlets, window bytes. Convolutions the device
runs by row segments (C_in a multiple of 16: ``conv_stream_helium.h``) have
their own model per kind (``CONV_2D/rows`` ...), over that loop's counts:
pixel slots times weight blocks, passes of up to four blocks, segments and
the bytes of the strips it copies. ``tools/fit_latency.py``
measures the grid and writes ``data/latency_qemu-m55.json`` (coefficients and
the held-out fit error); :func:`predict` applies it to a model the way
:func:`dtmm.compile` would lower it. The unit is instructions, not cycles.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .ir import Model, Op, Tensor
from .sparsity_choice import choose_conv, choose_fc, op_mode

# FWCS kernels: what every kept filterlet costs (a 1x1 filter is a single
# filterlet, so its kept filterlets are its live filters).
_FWCS_FEATURES = (
    "one",
    "pixels",
    "outputs",
    "tail_outputs",
    "kept_vector_dots",
    "kept_taps",
    "kept_tails",
    "patch_bytes",
)
FEATURES: dict[str, tuple[str, ...]] = {
    "CONV_2D": (
        "one",
        "pixels",
        "outputs",
        "tail_outputs",
        "vector_dots",
        "row_dots",
        "patch_bytes",
    ),
    # (left on the pixel-group loop: C_in off a multiple of 16, mostly small)
    "CONV_2D_1x1": ("one", "pixels", "outputs", "vector_dots"),
    "CONV_2D_FWCS": _FWCS_FEATURES + ("live_outputs", "mask_bits", "kept_runs"),
    "CONV_2D_FWCS_1x1": ("one", "pixels", "kept_vector_dots", "kept_taps", "constant_pixels"),
    "DEPTHWISE_CONV_2D": (
        "one",
        "pixels",
        "macs",
        "depthwise_steps",
        "depthwise_tap_steps",
        "edge_pixels",
        "edge_bytes",
    ),
    "AVERAGE_POOL_2D": ("one", "outputs", "macs"),
    "MAX_POOL_2D": ("one", "outputs", "macs"),
    "FULLY_CONNECTED": ("one", "outputs", "vector_dots"),
    "FULLY_CONNECTED_BLOCK": ("one", "outputs", "kept_taps", "mask_bits"),
}
# The row-segment loop (conv_stream_helium.h): per pixel slot and kept
# block, a load and a dot product; per four slots and pass, the sums' load
# and store; per slot and filter, the requantization; per segment and filter
# (and pass) the set-up; the strip copy.
_ROWS_FEATURES = (
    "one",
    "slot_blocks",
    "slot_passes",
    "slot_live",
    "segment_live",
    "segment_passes",
    "strip_entries",
)
FEATURES.update(
    {
        "CONV_2D/rows": _ROWS_FEATURES,
        "CONV_2D_1x1/rows": _ROWS_FEATURES,
        "CONV_2D_FWCS/rows": _ROWS_FEATURES
        + ("segment_blocks", "kept_blocks", "constant_pixels", "mask_bits"),
        "CONV_2D_FWCS_1x1/rows": _ROWS_FEATURES + ("constant_pixels",),
    }
)
ELEMENTWISE_FEATURES = ("one", "elements", "in_elements")
# Filters per device convolution call (kRunConvChunk in conv_runs.h).
FILTER_CHUNK = 64
# Bytes of the FWCS run table (kMaxRuns runs of 4 bytes, less the 3 that
# filter_blocks may write past the last list): a sparse chunk's block lists
# must fit in it, so long windows take smaller chunks.
_BLOCK_LIST_BYTES = 5 * FILTER_CHUNK * 4 - 3
# The row loop's strip and segment limits (kStripBytes, kStreamGroups).
_STRIP_BYTES = 5120
_STREAM_GROUPS = 64
DEFAULT_TARGET = "qemu-m55"


@dataclass(frozen=True)
class LayerShape:
    """What a kernel's cost depends on. ``kept`` counts kept filterlets (conv)
    or kept blocks (FC); ``block`` is the FC block size."""

    kind: str
    in_elements: int
    out_h: int = 1
    out_w: int = 1
    c_in: int = 1
    c_out: int = 1
    kh: int = 1
    kw: int = 1
    kept: int = 0
    block: int = 16
    live: int | None = None  # filters with a kept filterlet (None: expected
    # for kept filterlets spread at random)
    runs: int | None = None  # stretches of consecutive kept taps, over all
    # filters (None: expected for kept filterlets spread at random)
    left_shift: bool = False  # some channel's requantization scale is >= 1 (a left shift)
    passes: int | None = None  # the row loop's passes: sum over filters of
    # ceil(kept 16-byte blocks / 4) (None: from the mean kept per live filter)

    @property
    def stride(self) -> int:
        """The (square) stride that in_elements implies for the output."""
        return max(
            1, round(np.sqrt(self.in_elements / max(self.out_h * self.out_w * self.c_in, 1)))
        )

    @property
    def key(self) -> str:
        """The kernel the device runs: ``kind``, or ``kind + "/rows"`` for
        the row-segment loop."""
        return self.kind + "/rows" if self._strip() else self.kind

    def _strip(self) -> tuple[int, int, int, int, int, bool] | None:
        """(planes, pitch, reach, groups, rows, flat) of the device's row loop
        (strip_shape in conv_stream_helium.h), None where it does not run."""
        if self.kind not in ("CONV_2D", "CONV_2D_1x1", "CONV_2D_FWCS", "CONV_2D_FWCS_1x1"):
            return None
        if self.c_in % 16 or self.left_shift:
            return None
        s, kh, kw, ow = self.stride, self.kh, self.kw, self.out_w
        flat = kh == 1 and kw == 1
        planes, pitch, reach = min(s, kw) * (self.c_in // 16), min(s, kh), (kw - 1) // s
        budget = _STRIP_BYTES // 16 // planes  # entries per plane
        row_groups = -(-ow // 4)
        groups = min((budget // kh - reach) >> 2, row_groups, _STREAM_GROUPS)
        if groups <= 0:
            return None
        rows = 1
        if groups == row_groups:
            rows = budget // ow if flat else (budget // (4 * groups + reach) - kh) // pitch + 1
            rows = max(1, min(rows, self.out_h, _STREAM_GROUPS // groups))
        return planes, pitch, reach, groups, rows, flat

    def _rows_values(self, live: float) -> dict[str, float]:
        planes, pitch, reach, groups, rows, flat = self._strip()
        vec = self.c_in // 16
        chunk = FILTER_CHUNK
        window_blocks = self.kh * self.kw * vec
        if self.kind == "CONV_2D_FWCS" and window_blocks * chunk > _BLOCK_LIST_BYTES:
            chunk = _BLOCK_LIST_BYTES // window_blocks
        chunks = -(-self.c_out // chunk)
        if self.kind.startswith("CONV_2D_FWCS"):
            blocks = self.kept * vec
            passes = self.passes
            if passes is None:  # the mean live filter's
                passes = live * np.ceil(blocks / max(live, 1) / 4)
        else:  # a dense filter runs over all its blocks, zero or not
            blocks = self.c_out * self.kh * self.kw * vec
            passes = self.c_out * -(-(self.kh * self.kw * vec) // 4)
        slots = segments = strip = 0
        for y in range(0, self.out_h, rows):
            r = min(rows, self.out_h - y)
            for x in range(0, self.out_w, 4 * groups):
                n = min(self.out_w - x, 4 * groups)
                slots += 4 * -(-(r * n) // 4) if flat else r * 4 * -(-n // 4)
                segments += 1
                entries = self.out_w if flat and rows > 1 else 4 * groups + reach
                strip += planes * ((rows - 1) * pitch + self.kh) * entries
        return {
            "slot_blocks": slots * blocks,
            "slot_passes": slots / 4 * passes,
            "slot_live": slots * live,
            "segment_live": segments * live,
            "segment_passes": segments * passes,
            "strip_entries": strip * chunks,
            "segment_blocks": segments * blocks,
            "kept_blocks": blocks,
        }

    def _depthwise_values(self, pixels: int, taps: int) -> dict[str, float]:
        """The Helium depthwise loop's counts (depthwise_helium.h): per pixel
        a step per 16, 8 or 4 channels (as the depth divides), per step and
        tap a loop turn; border pixels, whose window crosses the padding
        (TF SAME on a square input: the pads that the output size implies),
        are copied into a patch first."""
        width = 16 if self.c_in % 16 == 0 else 8 if self.c_in % 8 == 0 else 4
        steps = pixels * -(-self.c_in // width)
        size = round(np.sqrt(self.in_elements / max(self.c_in, 1)))
        inside = 1
        for out, k in ((self.out_h, self.kh), (self.out_w, self.kw)):
            pad = max((out - 1) * self.stride + k - size, 0)
            first = -(-(pad // 2) // self.stride)
            last = (size - k + pad // 2) // self.stride  # the last window inside
            inside *= max(min(last, out - 1) - first + 1, 0)
        edge = pixels - inside
        return {
            "depthwise_steps": steps,
            "depthwise_tap_steps": steps * taps,
            "edge_pixels": edge,
            "edge_bytes": edge * taps * self.c_in,
        }

    def features(self) -> np.ndarray:
        pixels = self.out_h * self.out_w
        outputs = pixels * self.c_out
        taps = self.kh * self.kw
        vec = -(-self.c_in // 16)
        density = self.kept / max(1, self.c_out * taps)
        live = self.live
        if live is None:
            live = self.c_out * (1.0 - (1.0 - density) ** taps)
        # a dense filter (or a 1x1 one) over a window of at most 32 bytes is
        # one or two vectors: the assembly loop takes it
        small = taps * self.c_in <= 32 and not self.left_shift and self.kind != "CONV_2D_FWCS"
        # off the row loop, every other window takes the C++ filter loop
        cxx = not small
        runs = self.runs
        if runs is None:  # a run starts at every kept tap whose predecessor is pruned
            runs = self.c_out * (density + (taps - 1) * density * (1.0 - density))
        values = {
            "one": 1.0,
            "pixels": pixels,
            "outputs": outputs,
            "elements": outputs,
            # the device's C++ filter loop, not the assembly one: C_in off a
            # multiple of 16, or a requantization that shifts left
            "tail_outputs": outputs * cxx,
            "in_elements": self.in_elements,
            "macs": outputs * taps,
            # the device copies each pixel's window once per chunk of filters
            "patch_bytes": pixels * taps * self.c_in * -(-self.c_out // FILTER_CHUNK),
            "vector_dots": outputs * -(-(taps * self.c_in) // 16),
            "row_dots": outputs * self.kh * -(-(self.kw * self.c_in) // 16),
            "kept_vector_dots": pixels * self.kept * vec,
            "kept_taps": pixels * self.kept,
            # only filters with runs pass through the device filter loop; an
            # empty filter's constant output is copied
            "live_outputs": pixels * live,
            # each run of a filter has its own loop set-up on the device
            "kept_runs": pixels * runs,
            "kept_tails": pixels * self.kept * cxx,
            # bits of the filterlet (block) mask the kernel scans
            "mask_bits": outputs * taps
            if self.kh * self.kw > 1
            else self.c_out * -(-self.c_in // self.block),
            # filters without kept filterlets: their constant outputs, per pixel
            "constant_pixels": pixels * -(-self.c_out // FILTER_CHUNK) * (live < self.c_out),
        }
        if self.kind == "DEPTHWISE_CONV_2D":
            values.update(self._depthwise_values(pixels, taps))
        key = self.key
        if key.endswith("/rows"):
            if not self.kind.startswith("CONV_2D_FWCS"):  # dense: every tap of every filter
                live = self.c_out
            values.update(self._rows_values(live))
        names = FEATURES.get(key, ELEMENTWISE_FEATURES)
        return np.array([values[n] for n in names], np.float64)


def conv_kind(weights: np.ndarray, mode: str) -> str:
    """The kernel :func:`dtmm.compile` uses for an OHWI conv under ``mode``."""
    choice = choose_conv(weights, mode).kind
    if choice == "fwcs":
        return "CONV_2D_FWCS_1x1" if weights.shape[1:3] == (1, 1) else "CONV_2D_FWCS"
    if choice == "csr":
        return "CONV_2D_CSR"
    return "CONV_2D_1x1" if weights.shape[1:3] == (1, 1) else "CONV_2D"


def layer_shape(
    model: Model, op: Op, sparse: str | Mapping[str, str] = "auto", fc_block: int = 16
) -> LayerShape:
    """The :class:`LayerShape` of ``op`` as compiled with ``sparse``."""
    sparse = op_mode(sparse, op.name, op.options)
    x = model.tensors[op.inputs[0]]
    y = model.tensors[op.outputs[0]]
    n_in = int(np.prod(x.shape))
    if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = model.tensors[op.inputs[1]]
        _, oh, ow, co = y.shape
        if op.type == "DEPTHWISE_CONV_2D" or w.data is None:
            return LayerShape(op.type, n_in, oh, ow, x.shape[3], co, w.shape[1], w.shape[2])
        kind = conv_kind(w.data, sparse)
        kept_taps = (w.data != 0).any(axis=3)
        live = int(kept_taps.any(axis=(1, 2)).sum())
        flat = kept_taps.reshape(len(kept_taps), -1)
        # the runtime's multiplier is m = q * 2^shift, q in [0.5, 1): a left
        # shift (shift >= 1) from m >= 1; the device's assembly takes the rest
        m = float(x.scale[0]) * w.scale.astype(np.float64) / float(y.scale[0])
        runs = int(flat[:, 0].sum() + (flat[:, 1:] & ~flat[:, :-1]).sum())
        blocks = flat.sum(axis=1) * -(-w.shape[3] // 16)
        passes = int(np.ceil(blocks / 4).sum())
        return LayerShape(
            kind,
            n_in,
            oh,
            ow,
            w.shape[3],
            co,
            w.shape[1],
            w.shape[2],
            int(kept_taps.sum()),
            live=live,
            runs=runs,
            left_shift=bool(np.any(m >= 1.0)),
            passes=passes,
        )
    if op.type == "FULLY_CONNECTED":
        w = model.tensors[op.inputs[1]]
        units, depth = w.shape
        kind = "FULLY_CONNECTED"
        kept = 0
        if w.data is not None and choose_fc(w.data, sparse, fc_block) == "block":
            kind = "FULLY_CONNECTED_BLOCK"
            per_row = -(-depth // fc_block)
            padded = np.zeros((units, per_row * fc_block), np.int8)
            padded[:, :depth] = w.data
            kept = int((padded.reshape(units, per_row, fc_block) != 0).any(axis=2).sum())
        return LayerShape(kind, n_in, 1, 1, depth, units, kept=kept, block=fc_block)
    if op.type in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kh, kw = op.options["filter"]
        return LayerShape(op.type, n_in, 1, 1, 1, int(np.prod(y.shape)), kh, kw)
    return LayerShape(op.type, n_in, 1, 1, 1, int(np.prod(y.shape)))


@dataclass
class LatencyModel:
    """Coefficients per kernel kind, and how well they fit held-out layers."""

    target: str
    coefficients: dict[str, list[float]]
    fit_error: dict[str, dict[str, float]] = field(default_factory=dict)
    points: int = 0

    def predict_layer(self, shape: LayerShape) -> float:
        coef = self.coefficients.get(shape.key)
        if coef is None:  # an op the grid never measured: cost it like an elementwise op
            coef = self.coefficients["_elementwise"]
        return max(float(np.dot(coef, shape.features())), 0.0)

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "unit": "instructions (QEMU TCG plugin count, not cycles)",
                "features": {
                    k: list(FEATURES.get(k, ELEMENTWISE_FEATURES)) for k in self.coefficients
                },
                "coefficients": self.coefficients,
                "fit_error": self.fit_error,
                "points": self.points,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LatencyModel:
        d = json.loads(text)
        return cls(d["target"], d["coefficients"], d.get("fit_error", {}), d.get("points", 0))


@cache
def load(target: str = DEFAULT_TARGET) -> LatencyModel:
    """The latency model shipped with dtmm for ``target``."""
    path = resources.files("dtmm") / "data" / f"latency_{target}.json"
    if not path.is_file():
        raise ValueError(f"no latency model for target {target!r} (only {DEFAULT_TARGET})")
    return LatencyModel.from_json(path.read_text())


@dataclass(frozen=True)
class LayerLatency:
    name: str
    kind: str
    instructions: float


def predict(
    model: Model,
    sparse: str | Mapping[str, str] = "auto",
    fc_block: int = 16,
    target: str = DEFAULT_TARGET,
) -> list[LayerLatency]:
    """Predicted instructions per op of ``model`` compiled with ``sparse``
    (after the compiler's own rewrites: a consumer of removed dead filters
    is priced with the input channels it keeps)."""
    from .graph_passes import as_compiled

    lm = load(target)
    rows = []
    model = as_compiled(model, sparse)
    for op in model.ops:
        shape = layer_shape(model, op, sparse, fc_block)
        rows.append(LayerLatency(op.name, shape.kind, lm.predict_layer(shape)))
    return rows


# ---- measuring and fitting (tools/fit_latency.py; needs the device toolchain)


def _quantized(name: str, shape: tuple[int, ...], scale: float, zp: int = 0) -> Tensor:
    return Tensor(name, shape, np.dtype(np.int8), np.array([scale], np.float32), np.array([zp]))


def _exact_keep(shape: tuple[int, ...], density: float, rng: np.random.Generator) -> np.ndarray:
    """A random mask keeping exactly round(density * size) units, so that a
    layer measured at a sparsity has that sparsity (independent draws per
    unit would be off by several points on a small layer)."""
    size = int(np.prod(shape))
    keep = np.zeros(size, bool)
    keep[rng.permutation(size)[: int(round(density * size))]] = True
    return keep.reshape(shape)


def random_layer(kind: str, shape: LayerShape, density: float, rng: np.random.Generator) -> Model:
    """A one-op int8 model of ``kind`` whose conv/FC weights keep ``density``
    of their filterlets (blocks), for measuring kernels (with ``shape.left_shift``,
    a conv whose requantization shifts some channels left)."""
    oh, ow, ci, co, kh, kw = shape.out_h, shape.out_w, shape.c_in, shape.c_out, shape.kh, shape.kw
    stride = shape.stride
    h, w = oh * stride, ow * stride
    x = _quantized("x", (1, h, w, ci), 0.05, -5)
    tensors = {"x": x}
    if kind.startswith("CONV_2D") or kind == "DEPTHWISE_CONV_2D":
        depthwise = kind == "DEPTHWISE_CONV_2D"
        wshape = (1, kh, kw, co) if depthwise else (co, kh, kw, ci)
        wdata = rng.integers(-127, 128, wshape).astype(np.int8)
        if not depthwise:
            keep = _exact_keep((co, kh, kw), density, rng)
            wdata = wdata * keep[..., None].astype(np.int8)
        n_scales = co
        tensors["w"] = Tensor(
            "w",
            wshape,
            np.dtype(np.int8),
            rng.uniform(0.002, 0.01, n_scales).astype(np.float32),
            np.zeros(n_scales, np.int64),
            3 if depthwise else 0,
            wdata,
        )
        tensors["b"] = Tensor(
            "b",
            (co,),
            np.dtype(np.int32),
            tensors["w"].scale * 0.05,
            np.zeros(co, np.int64),
            0,
            rng.integers(-1000, 1000, co).astype(np.int32),
        )
        # a small output scale takes some channels' requantization scale to 1
        # or more: a left shift
        tensors["y"] = _quantized("y", (1, oh, ow, co), 3e-4 if shape.left_shift else 0.5, 3)
        opts: dict[str, Any] = {
            "stride": (stride, stride),
            "dilation": (1, 1),
            "padding": "SAME",
            "activation": "RELU",
        }
        if depthwise:
            opts["depth_multiplier"] = co // ci
        op = Op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", ["x", "w", "b"], ["y"], opts, "op")
    elif kind.startswith("FULLY_CONNECTED"):
        x = _quantized("x", (1, ci), 0.05, -5)
        tensors["x"] = x
        wdata = rng.integers(-127, 128, (co, ci)).astype(np.int8)
        blocks = -(-ci // shape.block)
        keep = np.repeat(_exact_keep((co, blocks), density, rng), shape.block, axis=1)[:, :ci]
        tensors["w"] = Tensor(
            "w",
            (co, ci),
            np.dtype(np.int8),
            np.array([0.004], np.float32),
            np.zeros(1, np.int64),
            0,
            (wdata * keep).astype(np.int8),
        )
        tensors["b"] = Tensor(
            "b",
            (co,),
            np.dtype(np.int32),
            np.array([0.0002], np.float32),
            np.zeros(1, np.int64),
            0,
            rng.integers(-1000, 1000, co).astype(np.int32),
        )
        tensors["y"] = _quantized("y", (1, co), 0.5, 3)
        op = Op("FULLY_CONNECTED", ["x", "w", "b"], ["y"], {"activation": "NONE"}, "op")
    elif kind == "ADD":
        tensors["x2"] = _quantized("x2", (1, h, w, ci), 0.08, 7)
        tensors["y"] = _quantized("y", (1, h, w, ci), 0.1, -2)
        op = Op("ADD", ["x", "x2"], ["y"], {"activation": "RELU"}, "op")
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        tensors["y"] = _quantized("y", (1, oh, ow, ci), 0.05, -5)
        opts = {
            "stride": (stride, stride),
            "filter": (kh, kw),
            "padding": "SAME",
            "activation": "NONE",
        }
        op = Op(kind, ["x"], ["y"], opts, "op")
    elif kind == "RESHAPE":
        tensors["y"] = _quantized("y", (1, h * w * ci), 0.05, -5)
        op = Op("RESHAPE", ["x"], ["y"], {}, "op")
    elif kind == "SOFTMAX":
        x = _quantized("x", (1, ci), 0.1, 0)
        tensors["x"] = x
        tensors["y"] = _quantized("y", (1, ci), 1 / 256, -128)
        op = Op("SOFTMAX", ["x"], ["y"], {"beta": 1.0}, "op")
    else:
        raise ValueError(f"no random layer generator for {kind}")
    inputs = ["x", "x2"] if kind == "ADD" else ["x"]
    return Model(tensors, [op], inputs, ["y"], source=f"random {kind}")


def measurement_grid(rng: np.random.Generator) -> list[tuple[str, LayerShape, float, str]]:
    """(kind, shape, density, compile mode) points covering ResNet/MobileNet layers."""
    points = []
    sizes = (4, 8, 16, 32)
    chans = (3, 8, 16, 24, 32, 48, 64)
    for _ in range(36):
        hw = int(rng.choice(sizes))
        ci, co = int(rng.choice(chans)), int(rng.choice(chans[1:]))
        stride = int(rng.choice((1, 2)))
        shape = LayerShape("CONV_2D", hw * hw * ci * stride * stride, hw, hw, ci, co, 3, 3)
        points.append(("CONV_2D", shape, 1.0, "never"))
        for density in (1.0, 0.7, 0.5, 0.3, 0.1):
            points.append(("CONV_2D_FWCS", shape, density, "always"))
    for _ in range(6):  # large stems and early layers (MobileNet-style inputs)
        hw, ci, co = int(rng.choice((24, 48))), int(rng.choice((3, 8))), int(rng.choice((8, 16)))
        shape = LayerShape("CONV_2D", hw * hw * ci * 4, hw, hw, ci, co, 3, 3)
        points.append(("CONV_2D", shape, 1.0, "never"))
        points.append(("CONV_2D_FWCS", shape, float(rng.choice((1.0, 0.5))), "always"))
    wide = (8, 16, 32, 64, 128, 256)
    for i in range(32):  # the first 12 with C_in off a multiple of 16 (pixel-group loop)
        hw = int(rng.choice((3, 6, 12, 24, 48)))
        ci = int(rng.choice((3, 8, 24))) if i < 12 else int(rng.choice(wide))
        co = int(rng.choice(wide))
        while hw * hw * max(ci, co) > 48 * 48 * 16:  # fits the board's RAM
            hw //= 2
        stride = int(rng.choice((1, 2)))
        shape = LayerShape("CONV_2D_1x1", hw * hw * ci * stride * stride, hw, hw, ci, co, 1, 1)
        points.append(("CONV_2D_1x1", shape, 1.0, "never"))
        for density in (1.0, 0.5, 0.2):
            points.append(("CONV_2D_FWCS_1x1", shape, density, "always"))
    for _ in range(8):  # requantizations with left shifts take the C++ loop
        hw, ci, co = int(rng.choice((8, 16, 32))), int(rng.choice((16, 32, 64))), 32
        shape = LayerShape("CONV_2D", hw * hw * ci, hw, hw, ci, co, 3, 3, left_shift=True)
        points.append(("CONV_2D", shape, 1.0, "never"))
        for density in (1.0, 0.5, 0.2):
            points.append(("CONV_2D_FWCS", shape, density, "always"))
    for _ in range(12):
        hw, c = int(rng.choice((6, 12, 24, 48))), int(rng.choice((8, 16, 32, 64, 128)))
        stride = int(rng.choice((1, 2)))
        shape = LayerShape("DEPTHWISE_CONV_2D", hw * hw * c * stride * stride, hw, hw, c, c, 3, 3)
        points.append(("DEPTHWISE_CONV_2D", shape, 1.0, "never"))
    for _ in range(10):
        ci, co = int(rng.choice((64, 128, 256, 512))), int(rng.choice((2, 10, 32, 64)))
        shape = LayerShape("FULLY_CONNECTED", ci, 1, 1, ci, co)
        points.append(("FULLY_CONNECTED", shape, 1.0, "never"))
        for density in (0.7, 0.4, 0.1):
            points.append(("FULLY_CONNECTED_BLOCK", shape, density, "always"))
    for _ in range(8):
        hw, c = int(rng.choice((4, 8, 16, 32))), int(rng.choice((8, 16, 32, 64)))
        points.append(("ADD", LayerShape("ADD", hw * hw * c, hw, hw, c, c), 1.0, "never"))
        k = int(rng.choice((2, 3)))
        pool = LayerShape("AVERAGE_POOL_2D", hw * hw * c * 4, hw, hw, c, c, k, k)
        points.append(("AVERAGE_POOL_2D", pool, 1.0, "never"))
        points.append(("MAX_POOL_2D", pool, 1.0, "never"))
        points.append(("RESHAPE", LayerShape("RESHAPE", hw * hw * c, hw, hw, c, c), 1.0, "never"))
        points.append(("SOFTMAX", LayerShape("SOFTMAX", c, 1, 1, c, c), 1.0, "never"))
    # More depthwise layers, last and from a generator of their own (the
    # points before them keep their shapes and weights): the three channel
    # widths of the Helium loop, borders from 3x3 outputs to 48x48.
    more = np.random.default_rng(5)
    for _ in range(24):
        hw, c, stride = 48, 256, 2
        while (hw * stride) ** 2 * c > 96 * 96 * 16:  # what the runner's arena holds
            hw = int(more.choice((3, 6, 12, 24, 48)))
            c = int(more.choice((8, 12, 16, 24, 32, 64, 128, 256)))
            stride = int(more.choice((1, 2)))
        shape = LayerShape("DEPTHWISE_CONV_2D", hw * hw * c * stride * stride, hw, hw, c, c, 3, 3)
        points.append(("DEPTHWISE_CONV_2D", shape, 1.0, "never"))
    return points


def measure(
    points: Iterable[tuple[str, LayerShape, float, str]],
    rng: np.random.Generator,
    target: str = DEFAULT_TARGET,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[LayerShape, float]]:
    """Run each point's random layer on ``target``; (actual shape, instructions)."""
    from .compiler import compile as compile_model
    from .device import run

    points = list(points)
    results = []
    for i, (kind, shape, density, mode) in enumerate(points):
        model = random_layer(kind, shape, density, rng)
        measured = layer_shape(model, model.ops[0], mode)
        x = rng.integers(-128, 128, model.tensors["x"].shape).astype(np.int8)
        inputs = [x] if kind != "ADD" else [x, rng.integers(-128, 128, x.shape).astype(np.int8)]
        res = run(compile_model(model, sparse=mode), inputs if len(inputs) > 1 else x, target)
        results.append((measured, float(res.layers[0].instructions)))
        if progress:
            progress(f"[{i + 1}/{len(points)}] {measured.kind} {res.layers[0].instructions}")
    return results


def fit(
    samples: list[tuple[LayerShape, float]], target: str = DEFAULT_TARGET, seed: int = 0
) -> LatencyModel:
    """Least squares on relative error per kind. The error is reported by
    four-fold cross-validation (each sample predicted by a fit to the other
    three quarters of its kind's samples), then the fit is made on all."""
    by_kind: dict[str, list[tuple[LayerShape, float]]] = {}
    for shape, instr in samples:
        by_kind.setdefault(shape.key, []).append((shape, instr))
        if shape.kind == "ADD":  # also the fallback for per-element ops the grid never ran
            by_kind.setdefault("_elementwise", []).append((shape, instr))
    coefficients, errors = {}, {}
    for kind, rows in sorted(by_kind.items()):
        feats = np.stack([s.features() for s, _ in rows])
        y = np.array([v for _, v in rows])
        # each kind's folds its own: more samples of one kind leave the
        # others' as they were
        rng = np.random.default_rng([seed, zlib.crc32(kind.encode())])
        folds = np.array_split(rng.permutation(len(rows)), min(4, len(rows)))
        every = np.arange(len(rows))
        rel = np.empty(len(rows))
        for held in folds:
            # (four samples or fewer: too few to leave any out; the error is in-sample)
            train = np.setdiff1d(every, held) if len(rows) > 4 else every
            rel[held] = np.abs(feats[held] @ _solve(feats[train], y[train]) - y[held]) / y[held]
        errors[kind] = {
            "held_out_mean_rel": round(float(rel.mean()), 4),
            "held_out_max_rel": round(float(rel.max()), 4),
            "samples": len(rows),
        }
        coefficients[kind] = [float(c) for c in _solve(feats, y)]
    return LatencyModel(target, coefficients, errors, len(samples))


def _solve(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin sum ((f.c - y) / y)^2: relative error, so small layers count too."""
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(features * w[:, None], np.ones_like(y), rcond=None)
    return coef
