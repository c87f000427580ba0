"""GPU memory held by this process, read at collection time from torch.cuda or NVML.

Neither is imported for this: torch is read only when the application has imported it (and
initialised CUDA), NVML only when ``pynvml`` (package ``nvidia-ml-py``) is importable. Without a
GPU the metric simply has no points.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from otel_ml.contract import Attr

__all__ = ["gpu_memory_points"]


def gpu_memory_points() -> list[tuple[float, dict[str, Any]]]:
    """``(bytes, {ml.gpu.device: index})`` per device this process uses; empty without a GPU."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        return [(float(cuda.memory_reserved(i)), {Attr.GPU_DEVICE: str(i)})
                for i in range(cuda.device_count())]
    return _nvml_points()


def _nvml_points() -> list[tuple[float, dict[str, Any]]]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no device
        return []
    points = []
    pid = os.getpid()
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        used = sum(p.usedGpuMemory or 0 for p in
                   pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid)
        if used:
            points.append((float(used), {Attr.GPU_DEVICE: str(index)}))
    return points
