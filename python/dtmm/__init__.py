"""dtmm: deploy pruned int8 neural networks on microcontrollers."""

from importlib.metadata import PackageNotFoundError, version

from . import demo, device, latency, prune
from .compiler import compile
from .errors import ModelError, UnsupportedOpError
from .export import export_c
from .inspect import BlobReport, LayerInfo, inspect
from .ir import Model, Op, Tensor
from .loader import load
from .memory import MemoryPlan, plan_memory
from .runtime import Runtime
from .scheduler import BudgetError, ScheduleReport, ScheduleResult, schedule

try:
    __version__ = version("dtmm")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "BlobReport",
    "BudgetError",
    "LayerInfo",
    "MemoryPlan",
    "Model",
    "ModelError",
    "Op",
    "Runtime",
    "ScheduleReport",
    "ScheduleResult",
    "Tensor",
    "UnsupportedOpError",
    "__version__",
    "compile",
    "demo",
    "device",
    "export_c",
    "inspect",
    "load",
    "plan_memory",
    "latency",
    "prune",
    "schedule",
]
