"""Training-time pruning for PyTorch models (``pip install 'dtmm[torch]'``).

:class:`Pruner` wraps an ``nn.Module`` and prunes it from inside the user's
own training loop::

    pruner = dtmm.torch.Pruner(model, filterlets=0.5, filters={"conv2": 0.25},
                               blocks=0.5, start=0, end=2000, every=100)
    for step, (x, y) in enumerate(loader):
        loss = criterion(model(x), y)
        optimizer.zero_grad(); loss.backward()
        pruner.accumulate()          # first-order Taylor importance |w * dL/dw|
        optimizer.step()
        pruner.step()                # masks on the gradual schedule; pruned weights stay 0
    pruner.export_onnx("model.onnx", example_input)   # then dtmm.load(..., calibration=)

Units: a Conv2d *filterlet* is ``weight[o, :, ky, kx]`` (all input channels of
one filter at one kernel position, the OIHW layout of PyTorch), a *filter* is
``weight[o]`` with its bias (held at zero, so that the pruned channel outputs
exactly zero and the compiler removes it), a Linear *block* is ``block``
consecutive input weights of one output unit. 1x1 convs have one filterlet
per filter, so filterlet pruning is filter pruning there. Sparsity ramps from
0 at ``start`` to its final value at ``end`` along the cubic schedule of
Zhu & Gupta (2017); masks only grow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("dtmm.torch needs PyTorch: pip install 'dtmm[torch]'") from e

Ratio = float | Mapping[str, float]


@dataclass
class _Layer:
    name: str
    module: nn.Module
    kind: str  # "conv" or "linear"
    mask: torch.Tensor  # same shape as the weight, 1 = kept
    score: torch.Tensor  # per weight, accumulated |w * grad|


def _ratio(value: Ratio, name: str) -> float:
    r = value.get(name, 0.0) if isinstance(value, Mapping) else value
    if not 0.0 <= float(r) <= 1.0:
        raise ValueError(f"pruning ratio for '{name}' must be in [0, 1], got {r}")
    return float(r)


class Pruner:
    """Gradual filterlet / filter / block pruning with Taylor importance."""

    def __init__(
        self,
        model: nn.Module,
        filterlets: Ratio = 0.0,
        filters: Ratio = 0.0,
        blocks: Ratio = 0.0,
        block: int = 16,
        start: int = 0,
        end: int = 1000,
        every: int = 100,
        weights: Ratio = 0.0,
    ) -> None:
        """``filterlets``, ``filters``, ``blocks`` and ``weights`` (the
        unstructured baseline) are final fractions pruned per layer: one
        number for all Conv2d (Linear, for blocks) layers or a dict from module
        name to fraction. Masks are updated every ``every`` steps between
        ``start`` and ``end``."""
        if end < start or every < 1:
            raise ValueError(f"need start <= end and every >= 1 (got {start}, {end}, {every})")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.model = model
        self.block = block
        self.start, self.end, self.every = start, end, every
        self.targets: dict[str, dict[str, float]] = {}
        self.layers: list[_Layer] = []
        names = dict(model.named_modules())
        for ratios in (filterlets, filters, blocks, weights):
            if isinstance(ratios, Mapping):
                unknown = sorted(set(ratios) - set(names))
                if unknown:
                    raise KeyError(f"no module named {unknown[0]!r} in the model")
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d) and m.groups == 1:
                kind = "conv"
                t = {
                    "filterlets": _ratio(filterlets, name),
                    "filters": _ratio(filters, name),
                    "weights": _ratio(weights, name),
                }
            elif isinstance(m, nn.Linear):
                kind = "linear"
                t = {"blocks": _ratio(blocks, name), "weights": _ratio(weights, name)}
            else:
                continue
            if not any(t.values()):
                continue
            w = m.weight
            layer = _Layer(name, m, kind, torch.ones_like(w), torch.zeros_like(w))
            w.register_hook(lambda g, layer=layer: g * layer.mask)  # pruned weights get no update
            if kind == "conv" and t["filters"] and m.bias is not None:
                m.bias.register_hook(
                    lambda g, layer=layer: g * layer.mask.reshape(len(g), -1).amax(dim=1)
                )
            self.layers.append(layer)
            self.targets[name] = t
        self.steps = 0

    # ---- schedule

    def fraction(self, step: int | None = None) -> float:
        """How far along the cubic schedule ``step`` is (0 before start, 1 at end)."""
        step = self.steps if step is None else step
        if step < self.start:
            return 0.0
        if step >= self.end or self.end == self.start:
            return 1.0
        return 1.0 - (1.0 - (step - self.start) / (self.end - self.start)) ** 3

    # ---- training-loop hooks

    @torch.no_grad()
    def accumulate(self) -> None:
        """Add this batch's first-order Taylor importance (call after backward)."""
        for layer in self.layers:
            g = layer.module.weight.grad
            if g is not None:
                layer.score += (layer.module.weight * g).abs()

    @torch.no_grad()
    def step(self) -> None:
        """Advance one step: update the masks on schedule and re-apply them."""
        on_schedule = (self.steps - self.start) % self.every == 0 or self.steps == self.end
        if self.start <= self.steps <= self.end and on_schedule:
            self.update_masks(self.fraction())
        self.apply_masks()
        self.steps += 1

    @torch.no_grad()
    def apply_masks(self) -> None:
        for layer in self.layers:
            layer.module.weight.mul_(layer.mask)
            bias = layer.module.bias
            if layer.kind == "conv" and bias is not None and self.targets[layer.name]["filters"]:
                # a pruned filter outputs exactly zero, so dtmm removes it physically
                bias.mul_(layer.mask.reshape(len(bias), -1).amax(dim=1))

    @torch.no_grad()
    def update_masks(self, progress: float) -> None:
        """Prune each layer to ``progress`` times its targets, lowest
        importance first (pruned units score 0, so masks only grow)."""
        for layer in self.layers:
            t = self.targets[layer.name]
            score = layer.score * layer.mask
            if not score.any():  # no gradients seen yet: fall back to magnitude
                score = layer.module.weight.abs() * layer.mask
            if layer.kind == "conv":
                o = score.shape[0]
                if t["filters"]:
                    per_filter = score.sum(dim=(1, 2, 3))
                    self._prune_units(layer, per_filter, t["filters"] * progress, (o, 1, 1, 1))
                if t["filterlets"]:
                    per_fl = (score * layer.mask).sum(dim=1)  # [O, KH, KW]
                    self._prune_units(
                        layer,
                        per_fl,
                        t["filterlets"] * progress,
                        (o, 1, score.shape[2], score.shape[3]),
                    )
            elif t.get("blocks"):
                units, depth = score.shape
                per_row = -(-depth // self.block)
                padded = torch.zeros(units, per_row * self.block, dtype=score.dtype)
                padded[:, :depth] = score * layer.mask
                per_block = padded.reshape(units, per_row, self.block).sum(dim=2)
                keep = self._keep(
                    per_block, t["blocks"] * progress, layer_mask_blocks(layer, self.block)
                )
                layer.mask *= keep.repeat_interleave(self.block, dim=1)[:, :depth]
            if t.get("weights"):
                keep = self._keep(score * layer.mask, t["weights"] * progress, layer.mask > 0)
                layer.mask *= keep

    def _prune_units(self, layer: _Layer, scores: torch.Tensor, frac: float, shape) -> None:
        alive = (layer.mask.reshape(shape[0], -1, *scores.shape[1:]).amax(dim=1) > 0).reshape(
            scores.shape
        )
        keep = self._keep(scores, frac, alive)
        layer.mask *= keep.reshape(shape).to(layer.mask.dtype)

    @staticmethod
    def _keep(scores: torch.Tensor, frac: float, alive: torch.Tensor) -> torch.Tensor:
        """Keep-mask pruning round(frac * n) units, already-dead ones first."""
        n = int(round(frac * scores.numel()))
        flat = torch.where(
            alive.reshape(-1), scores.reshape(-1), torch.full_like(scores.reshape(-1), -1.0)
        )
        keep = torch.ones(scores.numel(), dtype=torch.float32)
        if n > 0:
            keep[torch.argsort(flat, stable=True)[:n]] = 0.0
        return keep.reshape(scores.shape)

    # ---- results

    def sparsity(self) -> dict[str, float]:
        """Fraction of exactly-zero weights per pruned layer."""
        return {
            layer.name: float((layer.module.weight == 0).float().mean()) for layer in self.layers
        }

    def export_onnx(self, path: str, example_input: torch.Tensor, **kwargs: Any) -> None:
        """Apply the masks and export the model (eval mode) to ONNX for dtmm.load."""
        self.apply_masks()
        kwargs.setdefault("input_names", ["input"])
        kwargs.setdefault("output_names", ["output"])
        export_onnx(self.model, path, example_input, **kwargs)


def export_onnx(module: nn.Module, path: str, example_input: torch.Tensor, **kwargs: Any) -> None:
    """Export ``module`` in eval mode (restoring its mode after) with the
    TorchScript exporter at opset 17 unless ``kwargs`` say otherwise."""
    was_training = module.training
    module.eval()
    try:
        torch.onnx.export(
            module,
            (example_input,),
            path,
            dynamo=False,
            opset_version=kwargs.pop("opset_version", 17),
            **kwargs,
        )
    finally:
        module.train(was_training)


def layer_mask_blocks(layer: _Layer, block: int) -> torch.Tensor:
    """Which FC blocks of a layer still have a kept weight."""
    units, depth = layer.mask.shape
    per_row = -(-depth // block)
    padded = torch.zeros(units, per_row * block)
    padded[:, :depth] = layer.mask
    return padded.reshape(units, per_row, block).amax(dim=2) > 0


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the Conv2d (groups=1) modules in definition order, the order in
    which they appear as CONV_2D ops of the exported, imported model."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]


class _PaddedConv(nn.Module):
    """A Conv2d with ONNX's explicit (possibly asymmetric) pads in front."""

    def __init__(self, conv: nn.Conv2d, pads: list[int]) -> None:
        super().__init__()
        self.conv = conv
        top, left, bottom, right = pads
        self.pads = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = nn.functional.pad(x, self.pads)
        return self.conv(x)


class OnnxModule(nn.Module):
    """A float ONNX graph as a PyTorch module, for fine-tuning a model whose
    training code is not at hand (see :func:`from_onnx`). Convs and Gemms
    become ``nn.Conv2d`` / ``nn.Linear`` submodules, so :class:`Pruner` finds
    them; the other nodes run as functions."""

    def __init__(self, proto: Any) -> None:
        super().__init__()
        from onnx import helper, numpy_helper

        self.inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        self.input_name = next(i.name for i in proto.graph.input if i.name not in self.inits)
        self.output_name = proto.graph.output[0].name
        self.nodes = []
        self.layers = nn.ModuleDict()
        consts = {}
        for k, node in enumerate(proto.graph.node):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            key = f"{node.op_type.lower()}_{k}"
            if node.op_type == "Conv":
                w = self.inits[node.input[1]]
                b = self.inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                pads = list(attrs.get("pads", [0, 0, 0, 0]))
                # symmetric pads stay in the conv, so an exported module has no Pad nodes
                inner = (pads[0], pads[1]) if pads[:2] == pads[2:] else (0, 0)
                if inner != (0, 0):
                    pads = [0, 0, 0, 0]
                conv = nn.Conv2d(
                    w.shape[1] * attrs.get("group", 1),
                    w.shape[0],
                    tuple(w.shape[2:]),
                    stride=tuple(attrs.get("strides", (1, 1))),
                    dilation=tuple(attrs.get("dilations", (1, 1))),
                    groups=attrs.get("group", 1),
                    bias=b is not None,
                    padding=inner,
                )
                conv.weight.data = torch.from_numpy(w.copy())
                if b is not None:
                    conv.bias.data = torch.from_numpy(b.copy())
                auto = attrs.get("auto_pad", b"NOTSET")
                if auto not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
                    raise ValueError(f"Conv {node.name}: auto_pad={auto!r} is not supported")
                self.layers[key] = _PaddedConv(conv, pads)
            elif node.op_type in ("Gemm", "MatMul"):
                w = self.inits[node.input[1]]
                if node.op_type == "MatMul" or not attrs.get("transB", 0):
                    w = w.T
                b = self.inits.get(node.input[2]) if len(node.input) > 2 else None
                lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
                lin.weight.data = torch.from_numpy(np.array(w, np.float32))
                if b is not None:
                    lin.bias.data = torch.from_numpy(b.copy())
                self.layers[key] = lin
            elif node.op_type in ("Reshape",):
                consts[k] = [int(d) for d in self.inits[node.input[1]]]
            elif node.op_type not in _FLOAT_OPS:
                raise ValueError(f"from_onnx: {node.op_type} ({node.name}) is not supported")
            self.nodes.append(
                (key, node.op_type, list(node.input), node.output[0], attrs, consts.get(k))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)[self.output_name]

    def export_onnx(self, path: str, example_input: torch.Tensor, **kwargs: Any) -> None:
        """Export the module (eval mode) to ONNX, for :func:`dtmm.load` with
        calibration data."""
        export_onnx(self, path, example_input, **kwargs)

    def outputs_of(self, op_type: str) -> list[str]:
        """The names of the tensors that the graph's ``op_type`` nodes (an
        ONNX op type, e.g. ``"Relu"``) output, in graph order: features for
        :func:`dtmm.distill.distill`."""
        return [out for _, op, _, out, _, _ in self.nodes if op == op_type]

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every tensor of the graph for input ``x``, by its ONNX name (for
        distillation from intermediate outputs)."""
        env = {self.input_name: x}
        F = nn.functional
        for key, op, ins, out, attrs, shape in self.nodes:
            a = env.get(ins[0])
            if key in self.layers:
                y = self.layers[key](a)
            elif op == "Relu":
                y = F.relu(a)
            elif op == "Clip":
                lo = attrs.get(
                    "min", float(self.inits[ins[1]]) if len(ins) > 1 and ins[1] else None
                )
                hi = attrs.get(
                    "max", float(self.inits[ins[2]]) if len(ins) > 2 and ins[2] else None
                )
                y = torch.clamp(a, lo, hi)
            elif op == "Add":
                y = a + (env[ins[1]] if ins[1] in env else torch.from_numpy(self.inits[ins[1]]))
            elif op == "Mul":
                y = a * (env[ins[1]] if ins[1] in env else torch.from_numpy(self.inits[ins[1]]))
            elif op == "AveragePool":
                y = F.avg_pool2d(a, attrs["kernel_shape"], attrs.get("strides"))
            elif op == "MaxPool":
                y = F.max_pool2d(a, attrs["kernel_shape"], attrs.get("strides"))
            elif op == "GlobalAveragePool":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif op == "Transpose":
                y = a.permute(*attrs["perm"])
            elif op == "Reshape":
                y = a.reshape([a.shape[0]] + shape[1:])
            elif op == "Flatten":
                y = a.flatten(attrs.get("axis", 1))
            elif op == "Softmax":
                y = F.softmax(a, dim=attrs.get("axis", -1))
            else:  # Identity
                y = a
            env[out] = y
        return env


_FLOAT_OPS = (
    "Relu Clip Add Mul AveragePool MaxPool GlobalAveragePool Transpose Reshape Flatten "
    "Softmax Identity"
).split()


def outputs_probabilities(out: torch.Tensor) -> bool:
    """Whether model outputs ``out`` (a batch) are already probabilities (a
    softmax output) rather than logits."""
    return bool((out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3))


def log_probabilities(out: torch.Tensor, softmax_output: bool) -> torch.Tensor:
    """Log-probabilities of model outputs, probabilities or logits."""
    if softmax_output:
        return torch.log(out.clamp_min(1e-8))
    return torch.log_softmax(out, dim=1)


def from_onnx(path: str) -> OnnxModule:
    """Load a float ONNX model as a trainable PyTorch module."""
    import onnx

    return OnnxModule(onnx.load(path))
