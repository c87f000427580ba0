"""Static checks of docker-compose.yml (no container engine is needed or used).

The compose file must run the same configuration files the integration tests run, publish
ports on the loopback interface only, pin every image, and take Grafana's admin password from the
environment with no default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"

# Host paths the compose file mounts that must be files shipped in this repository.
SHIPPED_FILES = {
    "./collector/config.yaml",
    "./prometheus/prometheus.yml",
    "./alertmanager/alertmanager.yml",
}
# Directories mounted by the compose file. prometheus/rules and the grafana directories are
# written by other parts of the project; each must be a directory once it exists.
EXPECTED_DIRS = {
    "./prometheus/rules",
    "./grafana/provisioning",
    "./grafana/dashboards",
}
SERVICES = {"otel-collector", "prometheus", "alertmanager", "jaeger", "grafana", "demo"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_services_present(compose):
    assert SERVICES <= set(compose["services"])


def test_every_bind_mount_is_shipped_or_expected(compose):
    seen = set()
    for name, service in compose["services"].items():
        for source, _target in _bind_mounts(service):
            seen.add(source)
            assert source in SHIPPED_FILES | EXPECTED_DIRS, f"{name} mounts unexpected {source}"
            path = REPO / source
            if source in SHIPPED_FILES:
                assert path.is_file(), f"{name} mounts {source}, which the repo does not ship"
            elif path.exists():
                assert path.is_dir(), f"{name} mounts {source} as a directory"
    assert SHIPPED_FILES | EXPECTED_DIRS == seen


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: image {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} is not pinned"


def test_collector_image_matches_the_tested_release(compose):
    image = compose["services"]["otel-collector"]["image"]
    assert image.startswith("otel/opentelemetry-collector-contrib:0.165."), image
    go_mod = (REPO / "collector" / "builder" / "go.mod").read_text()
    assert "go.opentelemetry.io/collector/otelcol v0.165.0" in go_mod


def test_ports_bound_to_loopback(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: port {port} not on loopback"


def test_collector_runs_exactly_the_tested_config(compose):
    service = compose["services"]["otel-collector"]
    assert _bind_mounts(service) == [("./collector/config.yaml",
                                      "/etc/otelcol-contrib/config.yaml")]
    assert any("/etc/otelcol-contrib/config.yaml" in arg for arg in service["command"])


def test_prometheus_runs_the_tested_config_with_exemplars(compose):
    service = compose["services"]["prometheus"]
    mounts = dict(_bind_mounts(service))
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules"] == "/etc/prometheus/rules"
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    assert "--enable-feature=exemplar-storage" in service["command"]
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "otel-collector")
    assert job["honor_labels"] is True
    assert job["static_configs"][0]["targets"] == ["otel-collector:8889"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"]


def test_alertmanager_runs_the_tested_config(compose):
    service = compose["services"]["alertmanager"]
    mounts = dict(_bind_mounts(service))
    assert mounts["./alertmanager/alertmanager.yml"] == "/etc/alertmanager/alertmanager.yml"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]


def test_grafana_password_from_env_without_default(compose):
    env = compose["services"]["grafana"]["environment"]
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]*\}", password), password
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_demo_sends_to_the_collector(compose):
    demo = compose["services"]["demo"]
    assert demo["build"] == "."
    assert (REPO / "Dockerfile").is_file()
    command = " ".join(demo["command"])
    assert "otel-ml demo" in command and "http://otel-collector:4317" in command
