# The otel-ml demo image (docker-compose service "demo"): the library with its demo extra.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[demo]" && rm -rf /src

RUN useradd --create-home --uid 10001 otelml
USER otelml
WORKDIR /home/otelml

ENTRYPOINT []
CMD ["otel-ml", "demo", "--otlp", "http://otel-collector:4317", "--duration", "0", "--no-live"]
