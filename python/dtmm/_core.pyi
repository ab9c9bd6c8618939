"""Type stubs for the compiled module (python/dtmm/_core.cc)."""

from typing import Any

import numpy as np

OP_TYPES: dict[str, int]
INT8: int
INT32: int
FLOAT32: int
UINT8: int
UINT16: int
PAD_VALID: int
PAD_SAME: int

class BuildError(ValueError): ...

class OpOptions:
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    padding: int
    activation: int
    depth_multiplier: int
    filter_h: int
    filter_w: int
    axes: list[int]
    axis: int
    pad_before: list[int]
    pad_after: list[int]
    pad_value: int
    has_pad_value: bool
    beta: float
    kernel_h: int
    kernel_w: int
    depth: int
    bias: list[int]
    def __init__(self) -> None: ...

class BlobBuilder:
    def __init__(
        self, keep_channel_scales: bool = False, single_rounding: bool = False
    ) -> None: ...
    def add_activation(
        self, name: str, dtype: int, shape: list[int], scale: float, zero_point: int, offset: int
    ) -> int: ...
    def add_constant(
        self,
        name: str,
        dtype: int,
        shape: list[int],
        scale: float,
        zero_point: int,
        channel_scales: list[float],
        channel_zero_points: list[int],
        quant_axis: int,
        data: bytes,
    ) -> int: ...
    def add_op(
        self,
        type: int,
        inputs: list[int],
        outputs: list[int],
        options: OpOptions,
        name: str,
        scratch_offset: int = 0,
        scratch_size: int = 0,
    ) -> None: ...
    def set_io(self, inputs: list[int], outputs: list[int]) -> None: ...
    def finish(self, arena_size: int) -> bytes: ...

class Interpreter:
    def __init__(self, blob: bytes, reference: bool = False, workspace: bool = True) -> None: ...
    @property
    def arena_size(self) -> int: ...
    def inputs(self) -> list[dict[str, Any]]: ...
    def outputs(self) -> list[dict[str, Any]]: ...
    def set_input(self, index: int, data: np.ndarray) -> None: ...
    def get_output(self, index: int) -> np.ndarray: ...
    def invoke(self) -> None: ...
    def invoke_timed(self) -> list[float]: ...
    def ops(self) -> list[dict[str, Any]]: ...
    def tensors(self) -> list[dict[str, Any]]: ...

def quantize_multiplier(real: float) -> tuple[int, int]: ...
def weight_multiplier(real: float, single_rounding: bool = False) -> tuple[int, int]: ...
def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int: ...
