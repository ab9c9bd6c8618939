"""Code size of the device runtime: an -Os (MinSizeRel) cross-build of the
static library with every op and kernel (loader, interpreter, all kernels,
the CSR and block-sparse baselines included). Two figures: arm-none-eabi-size
summed over the library's objects, and the code a firmware links (the same
functions, with the inline helpers every object carries a copy of counted
once, as the linker keeps one).

usage: python benchmarks/code_size.py [--cpus cortex-m55,cortex-m4]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]


def library_sizes(cpu: str, build: Path) -> dict[str, int]:
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-G",
            "Ninja",
            f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'toolchains' / 'arm-none-eabi.cmake'}",
            f"-DDTMM_TARGET_CPU={cpu}",
            "-DCMAKE_BUILD_TYPE=MinSizeRel",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "dtmm_runtime"],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["arm-none-eabi-size", "-t", str(build / "libdtmm_runtime.a")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    text, data, bss = (int(v) for v in out.strip().splitlines()[-1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "linked_text": linked_text(build)}


def linked_text(build: Path) -> int:
    """Code bytes with each weak (inline, COMDAT) function counted once."""
    out = subprocess.run(
        ["arm-none-eabi-nm", "-S", str(build / "libdtmm_runtime.a")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total, weak = 0, set()
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) != 4 or parts[2] not in "TtWw":
            continue
        if parts[2] in "Ww":
            if parts[3] in weak:
                continue
            weak.add(parts[3])
        total += int(parts[1], 16)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default="cortex-m55,cortex-m4")
    args = parser.parse_args()
    missing = [
        t
        for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "cmake", "ninja")
        if not shutil.which(t)
    ]
    if missing:
        raise SystemExit(
            f"needs {', '.join(missing)} "
            "(apt-get install gcc-arm-none-eabi; pip install cmake ninja)"
        )
    rows = {}
    print(f"{'cpu':<14}{'.text':>10}{'linked':>10}{'.data':>8}{'.bss':>8}  (bytes, -Os)")
    with tempfile.TemporaryDirectory(prefix="dtmm-size-") as tmp:
        for cpu in args.cpus.split(","):
            rows[cpu] = library_sizes(cpu, Path(tmp) / cpu)
            r = rows[cpu]
            print(f"{cpu:<14}{r['text']:>10,}{r['linked_text']:>10,}{r['data']:>8,}{r['bss']:>8,}")
    print(f"wrote {write_json('code_size.json', rows)}")


if __name__ == "__main__":
    main()
