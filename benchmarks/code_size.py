"""Code size of the device runtime at -Os (MinSizeRel), every op and kernel
included (loader, interpreter, all kernels, the CSR and block-sparse
baselines). Two figures per CPU:

- library: arm-none-eabi-size summed over the static library's objects
  (inline helpers counted once per object that carries a copy);
- linked: the runtime's .text in a firmware that links it, the QEMU runner
  (which reaches every op through the op table), read from the linker map:
  what a device's flash holds.

usage: python benchmarks/code_size.py [--cpus cortex-m55,cortex-m4]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]
BOARDS = {"cortex-m55": "mps3-an547", "cortex-m4": "mps2-an386"}


def build(cpu: str, out: Path) -> None:
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(out),
            "-G",
            "Ninja",
            f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'toolchains' / 'arm-none-eabi.cmake'}",
            f"-DDTMM_TARGET_CPU={cpu}",
            f"-DDTMM_BOARD={BOARDS[cpu]}",
            "-DDTMM_BUILD_RUNNER=ON",
            "-DCMAKE_BUILD_TYPE=MinSizeRel",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["cmake", "--build", str(out), "--target", "dtmm_runner"], check=True, capture_output=True
    )


def library_text(out: Path) -> int:
    report = subprocess.run(
        ["arm-none-eabi-size", "-t", str(out / "libdtmm_runtime.a")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(report.strip().splitlines()[-1].split()[0])


def linked_text(out: Path) -> int:
    """Bytes of .text input sections from the runtime library that the
    runner's link kept (after --gc-sections and COMDAT folding)."""
    text = (out / "dtmm_runner.map").read_text()  # written where the link runs
    text = text[text.index("Linker script and memory map") :]
    section = re.compile(r"^ (\.text\S*)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", re.M)
    return sum(int(m[2], 16) for m in section.finditer(text) if "libdtmm_runtime.a(" in m[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default="cortex-m55,cortex-m4")
    args = parser.parse_args()
    tools = ("arm-none-eabi-gcc", "arm-none-eabi-size", "cmake", "ninja")
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise SystemExit(
            f"needs {', '.join(missing)} "
            "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi; pip install cmake ninja)"
        )
    rows = {}
    print(f"{'cpu':<14}{'library .text':>15}{'linked .text':>14}  (bytes, -Os)")
    with tempfile.TemporaryDirectory(prefix="dtmm-size-") as tmp:
        for cpu in args.cpus.split(","):
            if cpu not in BOARDS:
                raise SystemExit(f"unknown cpu {cpu!r}: one of {', '.join(BOARDS)}")
            out = Path(tmp) / cpu
            build(cpu, out)
            rows[cpu] = {"library_text": library_text(out), "linked_text": linked_text(out)}
            print(f"{cpu:<14}{rows[cpu]['library_text']:>15,}{rows[cpu]['linked_text']:>14,}")
    print(f"wrote {write_json('code_size.json', rows)}")


if __name__ == "__main__":
    main()
