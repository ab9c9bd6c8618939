"""Run compiled models on emulated Cortex-M boards (QEMU) and count instructions.

``dtmm.device.run(blob, inputs, target="qemu-m55")`` builds (once, cached) a
generic runner firmware from dtmm's own C++ runtime with the Arm GNU toolchain,
runs it under ``qemu-system-arm`` with the model and inputs passed through
semihosting, and returns the outputs and exact guest instruction counts from
dtmm's QEMU plugin. Instruction counts are instructions, not cycles.

Needs (Debian): gcc-arm-none-eabi libnewlib-arm-none-eabi
libstdc++-arm-none-eabi-newlib qemu-system-arm, plus cmake and a host C
compiler (for the plugin).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import Runtime

TARGETS = {
    # target: (GCC -mcpu, QEMU machine / board)
    "qemu-m55": ("cortex-m55", "mps3-an547"),
    "qemu-m4": ("cortex-m4", "mps2-an386"),
}
APT_PACKAGES = (
    "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm"
)


class DeviceError(RuntimeError):
    """The device toolchain is missing or the firmware failed."""


@dataclass(frozen=True)
class LayerCount:
    name: str
    op: str  # the runtime op (its kernel), e.g. CONV_2D or CONV_2D_FWCS
    macs: int  # multiply-accumulates of the dense equivalent layer
    instructions: int  # guest instructions executed by this op (not cycles)


@dataclass(frozen=True)
class DeviceResult:
    outputs: list[np.ndarray]  # one array per model output, batched like the inputs
    instructions: int  # guest instructions of the first inference (not cycles)
    instructions_per_inference: list[int]
    layers: list[LayerCount]  # per op, first inference
    # with run(..., profile=True): (function, instructions) over the whole run
    # (every inference, plus the firmware's start-up), most first
    functions: list[tuple[str, int]] | None = None


def available() -> str | None:
    """None when the device tools are installed, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm", "cmake") if not shutil.which(t)]
    if not (shutil.which("cc") or shutil.which("gcc")):
        missing.append("cc")
    if missing:
        return (
            f"missing {', '.join(missing)}: install with "
            f"'apt-get install --no-install-recommends {APT_PACKAGES} cmake gcc'"
        )
    return None


def _sources() -> Path:
    """The C++ sources: the installed copy, or the source checkout."""
    installed = Path(__file__).parent / "_firmware"
    if (installed / "CMakeLists.txt").exists():
        return installed
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "toolchains" / "runner").exists():
        return checkout
    raise DeviceError("dtmm's firmware sources are not installed with this package")


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for sub in ("CMakeLists.txt", "cpp/runtime", "cpp/kernels_helium", "toolchains"):
        path = root / sub
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    base = os.environ.get("DTMM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dtmm"
    )
    return Path(base)


def _check(cmd: list[str], what: str, **kw: Any) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise DeviceError(
            f"{what} failed ({' '.join(cmd[:3])} ...):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )


def firmware(target: str) -> Path:
    """Path of the runner ELF for ``target``, building it on first use."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    problem = available()
    if problem:
        raise DeviceError(problem)
    root = _sources()
    cpu, board = TARGETS[target]
    build = _cache_dir() / f"firmware-{_digest(root)}" / target
    elf = build / "toolchains" / "runner" / "dtmm_runner.elf"
    if elf.exists():
        return elf
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _check(
        [
            "cmake",
            "-S",
            str(root),
            "-B",
            str(build),
            *generator,
            f"-DCMAKE_TOOLCHAIN_FILE={root / 'toolchains' / 'arm-none-eabi.cmake'}",
            f"-DDTMM_TARGET_CPU={cpu}",
            f"-DDTMM_BOARD={board}",
            "-DDTMM_BUILD_RUNNER=ON",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        "configuring the runner firmware",
    )
    _check(["cmake", "--build", str(build), "--target", "dtmm_runner"], "building the firmware")
    return elf


def _plugin() -> Path:
    root = _sources()
    src = root / "toolchains" / "qemu" / "icount_plugin.c"
    out = _cache_dir() / f"plugin-{_digest(root)}" / "libdtmm_icount.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cc = shutil.which("cc") or shutil.which("gcc") or "cc"
        _check(
            [cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], "building the QEMU plugin"
        )
    return out


def _marker_address(elf: Path) -> int:
    nm = shutil.which("arm-none-eabi-nm") or "arm-none-eabi-nm"
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "dtmm_marker":
            return int(parts[0], 16)
    raise DeviceError(f"{elf} has no dtmm_marker symbol")


def _dense_macs(op: dict, tensors: list[dict]) -> int:
    out = tensors[op["outputs"][0]]["shape"]
    kind = op["type"]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = tensors[op["inputs"][1]]["shape"]
        per_output = w[1] * w[2] * (w[3] if kind == "CONV_2D" else 1)
        return int(np.prod(out)) * int(per_output)
    if kind in ("CONV_2D_FWCS", "CONV_2D_CSR"):
        _, kh, kw, cin = op["dense_shape"]
        return int(np.prod(out)) * kh * kw * cin
    if kind == "FULLY_CONNECTED":
        return int(np.prod(out)) * int(tensors[op["inputs"][1]]["shape"][1])
    if kind in ("FULLY_CONNECTED_BLOCK", "FULLY_CONNECTED_CSR"):
        return int(np.prod(out)) * int(op["dense_shape"][1])
    return 0


def qemu_command(board: str, elf: Path, extra: list[str] | None = None) -> list[str]:
    """qemu-system-arm running ``elf`` on ``board`` with semihosting (console and
    host files) and no serial port or monitor."""
    return [
        "qemu-system-arm", "-M", board, "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", *(extra or []), "-kernel", str(elf),
    ]  # fmt: skip


def run(
    blob: bytes,
    inputs: Any,
    target: str = "qemu-m55",
    timeout: float = 600,
    *,
    profile: bool = False,
) -> DeviceResult:
    """Run ``blob`` on the emulated ``target`` ("qemu-m55": Cortex-M55 with
    Helium; "qemu-m4": Cortex-M4). ``inputs`` is one array for a single-input
    model, else a list with one per input; with or without the batch
    dimension, as :meth:`dtmm.Runtime.run` accepts them. ``profile=True``
    also counts instructions per firmware function (``.functions``)."""
    host = Runtime(blob)  # validates the blob and the inputs exactly as the host does
    xs = list(inputs) if len(host.inputs) > 1 else [inputs]
    if len(xs) != len(host.inputs):
        raise ValueError(f"expected {len(host.inputs)} inputs, got {len(xs)}")
    batches = [host._batches(a, info, i) for i, (a, info) in enumerate(zip(xs, host.inputs))]
    count = len(batches[0])
    elf = firmware(target)
    plugin = _plugin()
    marker = _marker_address(elf)
    _, board = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="dtmm-device-") as tmp:
        work = Path(tmp)
        (work / "model.bin").write_bytes(bytes(blob))
        with open(work / "input.bin", "wb") as f:
            for n in range(count):
                for b in batches:
                    f.write(np.ascontiguousarray(b[n]).tobytes())
        options = f"{plugin},marker={marker:#x},out={work / 'counts.txt'}"
        if profile:
            options += f",pcs={work / 'pcs.txt'}"
        cmd = qemu_command(board, elf, ["-plugin", options])
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise DeviceError(
                f"{target}: firmware exited with {proc.returncode}: "
                f"{(proc.stderr + proc.stdout).strip()[-2000:]}"
            )
        raw = np.fromfile(work / "output.bin", dtype=np.uint8)
        counts = [int(v) for v in (work / "counts.txt").read_text().split()[2:]]
        functions = _functions(elf, (work / "pcs.txt").read_text()) if profile else None
    outputs, offset = [], 0
    per = sum(int(np.prod(o.shape)) * o.dtype.itemsize for o in host.outputs)
    for o in host.outputs:
        size = int(np.prod(o.shape)) * o.dtype.itemsize
        chunks = [raw[n * per + offset : n * per + offset + size] for n in range(count)]
        # As Runtime.run: one inference gives the output's shape, a batch of N
        # stacks the N outputs along axis 0.
        arr = np.concatenate(chunks).view(o.dtype)
        shape = tuple(o.shape) if count == 1 else (count * o.shape[0],) + tuple(o.shape[1:])
        outputs.append(arr.reshape(shape))
        offset += size
    ops = host._core.ops()
    tensors = host._core.tensors()
    hits = len(ops) + 1
    per_inference = [counts[n * hits + hits - 1] - counts[n * hits] for n in range(count)]
    first = counts[:hits]
    layers = [
        LayerCount(op["name"], op["type"], _dense_macs(op, tensors), first[k + 1] - first[k])
        for k, op in enumerate(ops)
    ]
    return DeviceResult(outputs, per_inference[0], per_inference, layers, functions)


def _functions(elf: Path, pcs: str) -> list[tuple[str, int]]:
    """Per-address counts ("address count" lines) summed per function of ``elf``."""
    nm = shutil.which("arm-none-eabi-nm") or "arm-none-eabi-nm"
    listing = subprocess.run(
        [nm, "-C", "-n", "-S", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    symbols = []  # (start, end, name) of code symbols, by address
    for line in listing.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in "tTwW":
            start = int(parts[0], 16)
            symbols.append((start, start + int(parts[1], 16), parts[3]))
    starts = [sym[0] for sym in symbols]
    totals: dict[str, int] = {}
    for line in pcs.splitlines():
        address, count = line.split()
        pc = int(address, 16) & ~1
        i = bisect.bisect_right(starts, pc) - 1
        name = symbols[i][2] if i >= 0 and pc < symbols[i][1] else f"{pc:#x}"
        totals[name] = totals.get(name, 0) + int(count)
    return sorted(totals.items(), key=lambda kv: -kv[1])
