# The two commands a newcomer needs (see README.md):
#   make demo   install into .venv and run the demo on the embedded default (no collector)
#   make test   install everything (Python packages, the real stack binaries) and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?= --duration 60

.PHONY: demo test install-dev stack bench lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

demo: $(PY)
	$(PY) -m pip install -q -e '.[demo]'
	$(VENV)/bin/otel-ml demo $(DEMO_ARGS)

# The whole suite runs the PyTorch example and real tensors too (torch's wheel is large; pip
# caches it under ~/.cache/pip).
install-dev: $(PY)
	$(PY) -m pip install -q -e '.[dev,torch]'

# Prometheus, promtool and Alertmanager (Debian packages), the Collector and Jaeger (built with
# Go from the manifests in collector/, cached under ~/.cache/otel-ml).
stack: $(PY)
	$(PY) tools/stack.py install

test: install-dev stack
	$(PY) -m pytest -ra

bench: $(PY)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) benchmarks/run.py
