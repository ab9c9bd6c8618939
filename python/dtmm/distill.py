"""Recovering a pruned model's accuracy by distillation from its dense original
(``pip install 'dtmm[torch]'``), when the training data is not at hand.

The pruned int8 model goes back into the float graph it was quantized from,
and that float model learns to reproduce the dense one's outputs (and chosen
intermediate tensors) on whatever inputs there are: a few calibration
samples, and inputs made by :func:`dtmm.synthetic.synthesize`. Pruned
filterlets stay exactly zero throughout::

    teacher = dtmm.torch.from_onnx("model_fp32.onnx")
    student = load_pruned(dtmm.torch.from_onnx("model_fp32.onnx"), pruned)
    x_more = dtmm.synthetic.synthesize(teacher, x_cal, count=1024)
    distill(student, teacher, [x_cal, x_more], steps=5000)
    student.export_onnx("distilled.onnx", torch.from_numpy(x_cal[:1]))
    model = dtmm.load("distilled.onnx", calibration=x_cal)

Students distilled from the same pruned start with different seeds average
into one that is usually better than each (:func:`soup`).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("dtmm.distill needs PyTorch: pip install 'dtmm[torch]'") from e

from .ir import Model
from .torch import OnnxModule, log_probabilities, outputs_probabilities

# The quantizer names a weight's dequantized copy after its initializer.
_DEQUANTIZED = "_DequantizeLinear_Output"


def load_pruned(module: OnnxModule, pruned: Model) -> OnnxModule:
    """Give ``module`` (a float ONNX graph, :func:`dtmm.torch.from_onnx`) the
    conv weights and biases of ``pruned``, dequantized: ``pruned`` is the
    model :func:`dtmm.load` made from the same ONNX file, then pruned.
    Convs are matched by their weight initializer's name. Only convolutions
    are copied; fully connected layers keep their float weights. Returns
    ``module``."""
    if not isinstance(module, OnnxModule):
        raise TypeError(f"load_pruned: module must be a dtmm.torch.OnnxModule, got {type(module)}")
    by_weight = {}
    for op in pruned.ops:
        if op.type == "CONV_2D":
            by_weight[op.inputs[1].removesuffix(_DEQUANTIZED)] = op
    for key, op_type, ins, _, _, _ in module.nodes:
        if op_type != "Conv":
            continue
        conv = module.layers[key].conv
        op = by_weight.get(ins[1])
        if op is None:
            raise ValueError(
                f"load_pruned: the pruned model has no CONV_2D with the weights of Conv "
                f"initializer '{ins[1]}'; was it imported from the same ONNX file?"
            )
        w = pruned.tensors[op.inputs[1]]
        want = tuple(conv.weight.shape)
        got = (w.shape[0], w.shape[3], w.shape[1], w.shape[2])
        if got != want:
            raise ValueError(
                f"load_pruned: CONV_2D '{op.name}' has weights {got} (OIHW), "
                f"the module's Conv {want}"
            )
        real = w.data.astype(np.float32) * w.scale.astype(np.float32)[:, None, None, None]
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(real.transpose(0, 3, 1, 2)))
        if len(op.inputs) > 2 and op.inputs[2] is not None and conv.bias is not None:
            b = pruned.tensors[op.inputs[2]]
            conv.bias.data = torch.from_numpy((b.data * b.scale).astype(np.float32))
    return module


def _filterlet_masks(module: OnnxModule) -> list[tuple[torch.nn.Conv2d, torch.Tensor]]:
    """Each conv with 1 where its filterlet (weight[o, :, ky, kx]) is kept."""
    masks = []
    for key, op_type, _, _, _, _ in module.nodes:
        if op_type == "Conv":
            conv = module.layers[key].conv
            kept = (conv.weight.detach() != 0).any(dim=1, keepdim=True).float()
            masks.append((conv, kept.expand_as(conv.weight).contiguous()))
    return masks


def soup(students: Sequence[OnnxModule]) -> OnnxModule:
    """A new module whose every parameter is the mean of the ``students``'
    (a "model soup", Wortsman et al., ICML 2022).

    Meant for students distilled from one pruned start with different seeds
    (other batch orders and augmentations): they keep the same filterlets,
    whose mean stays exactly zero, and their mean usually does better than
    any one of them (ResNet-8 at 30%: docs/accuracy.md). Raises ValueError
    when the students are not the same graph or have different filterlets
    pruned, whose mean would be neither model's sparsity."""
    students = list(students)
    if not students:
        raise ValueError("soup: students is empty")
    for k, s in enumerate(students):
        if not isinstance(s, OnnxModule):
            raise TypeError(f"soup: students[{k}] must be a dtmm.torch.OnnxModule, got {type(s)}")
    states = [s.state_dict() for s in students]
    first = states[0]
    convs = [n[0] for n in students[0].nodes if n[1] == "Conv"]
    masks = [m for _, m in _filterlet_masks(students[0])]
    for k, (student, state) in enumerate(zip(students[1:], states[1:]), 1):
        if state.keys() != first.keys() or any(state[n].shape != first[n].shape for n in first):
            raise ValueError(f"soup: students[{k}] is not the same graph as students[0]")
        for name, (_, mask), mask0 in zip(convs, _filterlet_masks(student), masks):
            if not torch.equal(mask, mask0):
                raise ValueError(
                    f"soup: students[{k}] and students[0] have different filterlets pruned in "
                    f"Conv '{name}' ({int((mask[:, 0] != mask0[:, 0]).sum())} differ); distil "
                    "them from the same pruned start"
                )
    mean = copy.deepcopy(students[0])
    mean.load_state_dict(
        {n: torch.stack([s[n].double() for s in states]).mean(0).to(first[n].dtype) for n in first}
    )
    return mean.eval()


class _Batches:
    """Batches drawn equally from every source, augmented as natural images
    (random shifts of up to 4 pixels with reflected borders, mirror images,
    mixup of pairs) when ``augment``."""

    def __init__(self, sources: list[np.ndarray], augment: bool, seed: int) -> None:
        self.sources, self.augment = sources, augment
        self.rng = np.random.default_rng(seed)

    def __call__(self, size: int) -> torch.Tensor:
        parts = []
        for k, source in enumerate(self.sources):
            n = size // len(self.sources) + (k < size % len(self.sources))
            parts.append(source[self.rng.integers(0, len(source), n)])
        x = np.concatenate(parts).astype(np.float32)
        if self.augment:
            x = self._shift_and_mirror(x)
            lam = self.rng.beta(0.4, 0.4, (len(x), 1, 1, 1)).astype(np.float32)
            x = lam * x + (1 - lam) * x[self.rng.permutation(len(x))]
        return torch.from_numpy(x)

    def _shift_and_mirror(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        pad = min(4, h - 1, w - 1)
        padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
        out = np.empty_like(x)
        for i in range(len(x)):
            dy, dx = self.rng.integers(0, 2 * pad + 1, 2)
            img = padded[i, :, dy : dy + h, dx : dx + w]
            out[i] = img[:, :, ::-1] if self.rng.random() < 0.5 else img
        return out


def distill(
    student: OnnxModule,
    teacher: OnnxModule,
    inputs: Sequence[np.ndarray],
    *,
    steps: int = 5000,
    batch: int = 64,
    lr: float = 3e-4,
    features: Sequence[str] | None = None,
    augment: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Train ``student`` to reproduce ``teacher`` on ``inputs``, holding its
    pruned filterlets (the all-zero ``weight[o, :, ky, kx]`` of each conv at
    the start) at zero. Returns the loss of every step.

    ``inputs`` are NCHW float arrays as the models take them, e.g. the
    calibration samples and synthesized inputs; every batch takes an equal
    share of each. The loss is the KL divergence of the student's output
    distribution from the teacher's plus, for each tensor named in
    ``features`` (default: the outputs of the graph's Add nodes, i.e. the
    residual blocks), its mean squared error relative to the teacher's mean
    square (``teacher.outputs_of("Relu")`` matches every ReLU's output,
    which did better on ResNet-8). Adam with a cosine schedule from ``lr``.
    ``augment=False`` turns off the shifts, mirror images and mixup (for
    inputs where a mirror image changes the class)."""
    for name, m in (("student", student), ("teacher", teacher)):
        if not isinstance(m, OnnxModule):
            raise TypeError(f"distill: {name} must be a dtmm.torch.OnnxModule, got {type(m)}")
    if steps < 1 or batch < 1:
        raise ValueError(f"distill: steps and batch must be >= 1, got {steps} and {batch}")
    sources = [np.asarray(x) for x in inputs]
    if not sources:
        raise ValueError("distill: inputs is empty")
    for k, x in enumerate(sources):
        if x.ndim != 4 or len(x) == 0 or x.shape[1:] != sources[0].shape[1:]:
            raise ValueError(
                f"distill: inputs[{k}] must be non-empty NCHW shaped like inputs[0] "
                f"{sources[0].shape[1:]}, got {x.shape}"
            )
    names = {n[3] for n in teacher.nodes} & {n[3] for n in student.nodes}
    if features is None:
        features = teacher.outputs_of("Add")
    missing = [f for f in features if f not in names]
    if missing:
        raise ValueError(f"distill: feature '{missing[0]}' is not a tensor of both models")
    torch.manual_seed(seed)
    batches = _Batches(sources, augment, seed)
    masks = _filterlet_masks(student)
    teacher = teacher.eval()
    with torch.no_grad():
        probe = teacher(batches(min(batch, 16)))
    softmax_output = outputs_probabilities(probe)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    student.train()
    for step in range(steps):
        x = batches(batch)
        with torch.no_grad():
            want = teacher.activations(x)
        got = student.activations(x)
        log_p = log_probabilities(want[teacher.output_name], softmax_output)
        log_q = log_probabilities(got[student.output_name], softmax_output)
        loss = (log_p.exp() * (log_p - log_q)).sum(1).mean()
        for f in features:
            loss = loss + ((got[f] - want[f]) ** 2).mean() / (want[f] ** 2).mean().clamp_min(1e-12)
        opt.zero_grad()
        loss.backward()
        for conv, mask in masks:
            conv.weight.grad *= mask
        opt.step()
        schedule.step()
        with torch.no_grad():
            for conv, mask in masks:
                conv.weight *= mask
        losses.append(loss.item())
        if progress and (step % 250 == 0 or step == steps - 1):
            print(f"distill: step {step + 1}/{steps} loss {losses[-1]:.4f}", file=sys.stderr)
    student.eval()
    return losses
