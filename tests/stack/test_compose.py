"""docker-compose.otel.yml: valid Compose, self-consistent, pinned, loopback-only.

No Docker engine runs here, so these check what `docker compose config` and a first
`up` would trip over: the schema, files that must exist, names that must be defined."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import COMPOSE_FILE, REPO


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stack_has_every_component(compose: dict[str, Any]) -> None:
    assert {"collector", "prometheus", "tempo", "loki", "grafana", "alertmanager"} <= set(
        compose["services"]
    )


def _bind_mounts(compose: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                mounts.append((name, source))
    return mounts


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    mounts = _bind_mounts(compose)
    assert mounts, "expected the configs to be bind-mounted"
    missing = [(svc, src) for svc, src in mounts if not (REPO / src).exists()]
    assert not missing, f"mounted paths that do not exist: {missing}"


def test_every_named_volume_and_secret_is_declared(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    declared_secrets = set(compose.get("secrets") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: volume {source!r} is not declared"
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in declared_secrets, f"{name}: secret {secret_name!r} undeclared"


def test_persistent_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "tempo", "loki", "grafana", "alertmanager"):
        sources = [v.split(":")[0] for v in compose["services"][name].get("volumes", [])]
        assert any(s in (compose.get("volumes") or {}) for s in sources), name


def test_depends_on_names_defined_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on undefined {dependency!r}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )


def test_images_are_pinned_to_exact_versions(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert "@sha256:" in image or re.search(r":v?\d+\.\d+\.\d+$", image), (
            f"{name}: image {image!r} is not pinned to an exact version"
        )


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port!r} is not loopback"
    assert published >= 5


def _container_ports(compose: dict[str, Any], service: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[1]) for p in compose["services"][service].get("ports", [])}


def test_published_ports_are_the_documented_ones(compose: dict[str, Any]) -> None:
    assert {4317, 4318} <= _container_ports(compose, "collector")
    assert 9090 in _container_ports(compose, "prometheus")
    assert 3000 in _container_ports(compose, "grafana")
    assert 3200 in _container_ports(compose, "tempo")
    assert 3100 in _container_ports(compose, "loki")
    assert 9093 in _container_ports(compose, "alertmanager")


def test_prometheus_runs_with_otlp_receiver_exemplars_and_remote_write(
    compose: dict[str, Any],
) -> None:
    command = compose["services"]["prometheus"]["command"]
    assert "--web.enable-otlp-receiver" in command
    assert "--enable-feature=exemplar-storage" in command
    assert "--web.enable-remote-write-receiver" in command  # Tempo's metrics generator


def test_no_webhook_url_is_committed() -> None:
    for path in [COMPOSE_FILE, *sorted((REPO / "alertmanager").rglob("*"))]:
        if path.is_file():
            assert not re.search(r"discord(app)?\.com/api/webhooks/\d+", path.read_text()), path


@pytest.mark.parametrize(
    ("service", "config_path"),
    [
        ("prometheus", "prometheus/prometheus.yml"),
        ("tempo", "tempo/tempo.yaml"),
        ("loki", "loki/loki.yaml"),
        ("alertmanager", "alertmanager/alertmanager.yml"),
        ("collector", "collector/config.yaml"),
    ],
)
def test_each_backend_mounts_its_config_and_is_told_to_use_it(
    compose: dict[str, Any], service: str, config_path: str
) -> None:
    spec = compose["services"][service]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in spec["volumes"]}
    target = mounts[f"./{config_path}"]
    command = " ".join(spec["command"])
    assert target in command, f"{service} mounts {config_path} at {target} but runs {command!r}"
    assert Path(REPO / config_path).is_file()
