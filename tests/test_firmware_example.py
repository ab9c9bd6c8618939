"""examples/firmware: the runtime and an embedded ResNet-8 as firmware (built
with the toolchain file, run under QEMU) predicts what the host predicts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dtmm
from dtmm import device

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(device.available() is not None, reason=f"device tools: {device.available()}")
@pytest.mark.parametrize("cpu, board", [("cortex-m55", "mps3-an547"), ("cortex-m4", "mps2-an386")])
def test_firmware_example_runs(tmp_path, cpu, board):
    model = data_path("models", "resnet8", "resnet8_int8.tflite")
    images = data_path("eval", "ic01_cifar10_test200.npz")
    build = tmp_path / "build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT / "examples" / "firmware"),
            "-B",
            str(build),
            *generator,
            f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'toolchains' / 'arm-none-eabi.cmake'}",
            f"-DDTMM_TARGET_CPU={cpu}",
            f"-DDTMM_BOARD={board}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DDTMM_EXAMPLE_MODEL={model}",
            f"-DDTMM_EXAMPLE_IMAGES={images}",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    run = subprocess.run(
        device.qemu_command(board, build / "resnet8_demo.elf"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = run.stdout + run.stderr
    assert run.returncode == 0, text  # 0: the device predicted the host's class
    assert "predicted class" in text
    assert "#define RESNET8_MODEL_ARENA_SIZE 49152u" in (build / "model.h").read_text()


def test_export_c_writes_an_aligned_array_and_sizes(tmp_path):
    blob = dtmm.compile(dtmm.load(dtmm.demo.bundled_model()))
    text = dtmm.export_c(blob, tmp_path / "digits.h", "digits")
    assert f"static const uint8_t digits[{len(blob)}] __attribute__((aligned(16)))" in text
    assert f"#define DIGITS_ARENA_SIZE {dtmm.Runtime(blob).arena_size}u" in text
    body = text.split("= {", 1)[1].split("};", 1)[0]
    assert bytes(int(v, 16) for v in body.replace(",", " ").split()) == blob
    with pytest.raises(ValueError, match="C identifier"):
        dtmm.export_c(blob, tmp_path / "x.h", "not-an-identifier")
