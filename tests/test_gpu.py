"""GPU memory: read from torch.cuda when the application uses it; nothing without a GPU.

There is no GPU on these machines: the torch path is exercised with a stand-in module that has
torch.cuda's interface (the real one needs a device); the NVML path is not reachable here.
"""

from __future__ import annotations

import sys
import types

from conftest import points

import otel_ml
from otel_ml import contract
from otel_ml._internal.core.gpu import gpu_memory_points


def test_the_contract_names_it_in_bytes():
    spec = contract.by_name("ml.process.gpu.memory.usage")
    assert spec.prometheus == "ml_process_gpu_memory_usage_bytes"


def test_without_a_gpu_there_are_no_points(providers, metric_reader, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    otel_ml.ModelMonitor("m", **providers)
    assert gpu_memory_points() == [] or "pynvml" in sys.modules
    assert points(metric_reader, "ml.process.gpu.memory.usage") == []


def test_torch_cuda_memory_is_reported_per_device(providers, metric_reader, monkeypatch):
    cuda = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                                 device_count=lambda: 2,
                                 memory_reserved=lambda i: [1024, 4096][i])
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    otel_ml.ModelMonitor("m", **providers)
    assert sorted((a["ml.gpu.device"], v) for a, v in
                  points(metric_reader, "ml.process.gpu.memory.usage")) == [("0", 1024), ("1", 4096)]


def test_a_failing_gpu_read_never_breaks_collection(providers, metric_reader, monkeypatch):
    def boom():
        raise RuntimeError("driver went away")

    cuda = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                                 device_count=boom, memory_reserved=lambda i: 0)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    predict = otel_ml.ModelMonitor("m", **providers)(lambda X: X)
    predict([[1.0]])
    assert points(metric_reader, "ml.model.predict.calls")[0][1] == 1
    assert points(metric_reader, "ml.process.gpu.memory.usage") == []
