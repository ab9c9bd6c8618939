"""Synthetic inputs for distillation without training data (``pip install 'dtmm[torch]'``).

When only a few calibration samples can be had, distilling a pruned model on
them alone teaches it little of what the dense model does elsewhere.
:func:`synthesize` makes more inputs from the dense model itself, by model
inversion: starting from noise, each batch of inputs is optimised so that
every convolution's outputs have, per channel, the mean and spread they have
on the calibration samples, and so that the model assigns each input to a
chosen class, classes taken in turn. A small total-variation term keeps the
inputs smooth, as natural images are. The statistics are measured on the
calibration samples, so nothing outside the user's model and data is needed
(the batch-norm statistics that published methods match are folded away in
an int8 or ONNX model).

    x_syn = dtmm.synthetic.synthesize(dtmm.torch.from_onnx("model.onnx"),
                                      calibration, count=1024)
"""

from __future__ import annotations

import sys

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("dtmm.synthetic needs PyTorch: pip install 'dtmm[torch]'") from e

from .torch import OnnxModule, log_probabilities, outputs_probabilities


def synthesize(
    model: OnnxModule,
    calibration: np.ndarray,
    count: int,
    *,
    steps: int = 800,
    batch: int = 128,
    lr: float = 0.1,
    smoothness: float = 0.5,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """``count`` inputs shaped like ``calibration`` (NCHW float, as ``model``
    takes them) that ``model`` classifies as class ``i % classes`` and on
    which its convolutions' per-channel output statistics match those of
    ``calibration``. Values stay within the calibration's range, per input
    channel. Deterministic for a given ``seed`` (on one machine)."""
    if not isinstance(model, OnnxModule):
        raise TypeError(f"synthesize: model must be a dtmm.torch.OnnxModule, got {type(model)}")
    cal = np.asarray(calibration)
    if cal.ndim != 4 or len(cal) < 2:
        raise ValueError(
            f"synthesize: calibration must be NCHW with at least 2 samples, got shape {cal.shape}"
        )
    if count < 1 or steps < 1 or batch < 1:
        raise ValueError(
            f"synthesize: count, steps and batch must be >= 1, got {count}, {steps}, {batch}"
        )
    x_cal = torch.from_numpy(cal.astype(np.float32))
    convs = [out for _, op, _, out, _, _ in model.nodes if op == "Conv"]
    if not convs:
        raise ValueError("synthesize: the model has no Conv to match statistics on")
    model = model.eval()
    with torch.no_grad():
        acts = model.activations(x_cal)
        ref = [(acts[c].mean((0, 2, 3)), acts[c].std((0, 2, 3)) + 1e-3) for c in convs]
        out = acts[model.output_name]
        softmax_output = outputs_probabilities(out)
        classes = out.shape[1]
        dims = (0, 2, 3)
        mean, std = x_cal.mean(dims, keepdim=True), x_cal.std(dims, keepdim=True) + 1e-6
        lo, hi = x_cal.amin(dims, keepdim=True), x_cal.amax(dims, keepdim=True)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    made = []
    try:
        for first in range(0, count, batch):
            n = min(batch, count - first)
            z = torch.randn((n,) + tuple(cal.shape[1:]), generator=generator).requires_grad_(True)
            target = (torch.arange(first, first + n) % classes).long()
            opt = torch.optim.Adam([z], lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            for _ in range(steps):
                got = model.activations(torch.maximum(torch.minimum(mean + std * z, hi), lo))
                loss = torch.nn.functional.nll_loss(
                    log_probabilities(got[model.output_name], softmax_output), target
                )
                for c, (m, s) in zip(convs, ref):
                    t = got[c]
                    loss = loss + (((t.mean(dims) - m) / s) ** 2).mean().sqrt()
                    loss = loss + (((t.std(dims) - s) / s) ** 2).mean().sqrt()
                tv = ((z[:, :, 1:] - z[:, :, :-1]) ** 2).mean()
                tv = tv + ((z[:, :, :, 1:] - z[:, :, :, :-1]) ** 2).mean()
                loss = loss + smoothness * tv
                opt.zero_grad()
                loss.backward()
                opt.step()
                schedule.step()
            with torch.no_grad():
                made.append(torch.maximum(torch.minimum(mean + std * z, hi), lo).numpy())
            if progress:
                done = first + n
                print(
                    f"synthesize: {done}/{count} inputs (loss {loss.item():.3f})", file=sys.stderr
                )
    finally:
        for p, g in zip(model.parameters(), frozen):
            p.requires_grad_(g)
    return np.concatenate(made)
