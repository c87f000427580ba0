# The two commands a newcomer needs (see README.md):
#   make demo   install into .venv and run the demo on the embedded default (no collector)
#   make test   install everything (Python packages, the real stack binaries) and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?= --duration 60

.PHONY: demo test install-dev stack bench lint jre

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

# Spark (the spark extra; tests/test_spark.py) runs on Java 17+: a Debian JRE
# (default-jre-headless: 17 on Debian 12, 21 on 13) when `java` is missing. Needs root or sudo.
jre:
	@command -v java >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    default-jre-headless || { $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    default-jre-headless; }; }

test: install-dev stack jre
	$(PY) -m pytest -ra

bench: $(PY)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) benchmarks/run.py
