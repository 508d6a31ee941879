"""collector/config.yaml: every pipeline is wired to defined components, and every exporter
points at a service and port that exist in docker-compose.otel.yml."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.stack.conftest import REPO, load_yaml

SECTIONS = ("receivers", "processors", "exporters")


def test_every_pipeline_references_defined_components(collector_config: dict[str, Any]) -> None:
    pipelines = collector_config["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces", "logs"}
    for name, pipeline in pipelines.items():
        for section in SECTIONS:
            assert pipeline.get(section), f"pipeline {name} has no {section}"
            for component in pipeline[section]:
                assert component in (collector_config.get(section) or {}), (
                    f"pipeline {name} uses undefined {section[:-1]} {component!r}"
                )
    for extension in collector_config["service"].get("extensions", []):
        assert extension in collector_config["extensions"]


def test_every_defined_component_is_used(collector_config: dict[str, Any]) -> None:
    pipelines = collector_config["service"]["pipelines"].values()
    for section in SECTIONS:
        used = {c for p in pipelines for c in p.get(section, [])}
        assert set(collector_config[section]) == used, section


def test_processors_are_in_a_safe_order(collector_config: dict[str, Any]) -> None:
    for name, pipeline in collector_config["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", name
        assert processors[-1] == "batch", name
        assert "attributes/optin" in processors, name
    for name in ("traces", "logs"):
        assert "redaction" in collector_config["service"]["pipelines"][name]["processors"]


def test_receivers_listen_on_the_standard_otlp_ports(collector_config: dict[str, Any]) -> None:
    protocols = collector_config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert "health_check" in collector_config["service"]["extensions"]


def test_exporters_use_the_current_component_names(collector_config: dict[str, Any]) -> None:
    for exporter in collector_config["exporters"]:
        kind = exporter.split("/")[0]
        assert kind in {"otlp_http", "otlp_grpc"}, f"{exporter}: deprecated or lossy exporter"


def _compose_listeners(compose: dict[str, Any]) -> dict[str, set[int]]:
    """Ports each compose service listens on inside the network, from its own config."""
    tempo = load_yaml(REPO / "tempo" / "tempo.yaml")
    loki = load_yaml(REPO / "loki" / "loki.yaml")
    tempo_otlp = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    return {
        "prometheus": {9090},
        "tempo": {tempo["server"]["http_listen_port"]}
        | {int(p["endpoint"].rsplit(":", 1)[1]) for p in tempo_otlp.values()},
        "loki": {loki["server"]["http_listen_port"]},
        "alertmanager": {9093},
        "grafana": {3000},
    }


@pytest.mark.parametrize(
    ("exporter", "service", "path_prefix"),
    [
        ("otlp_http/prometheus", "prometheus", "/api/v1/otlp"),
        ("otlp_grpc/tempo", "tempo", None),
        ("otlp_http/loki", "loki", "/otlp"),
    ],
)
def test_exporter_endpoint_matches_a_compose_service_and_port(
    collector_config: dict[str, Any],
    compose: dict[str, Any],
    exporter: str,
    service: str,
    path_prefix: str | None,
) -> None:
    endpoint = collector_config["exporters"][exporter]["endpoint"]
    if "://" not in endpoint:
        endpoint = "grpc://" + endpoint
    url = urlsplit(endpoint)
    assert url.hostname in compose["services"], f"{exporter}: no compose service {url.hostname}"
    assert url.hostname == service
    assert url.port in _compose_listeners(compose)[service], f"{exporter}: port {url.port}"
    if path_prefix is not None:
        # otlp_http appends /v1/<signal> to this base.
        assert url.path == path_prefix


def test_prometheus_gets_metrics_tempo_traces_loki_logs(collector_config: dict[str, Any]) -> None:
    pipelines = collector_config["service"]["pipelines"]
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/tempo"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]


@pytest.mark.parametrize(
    "secret",
    [
        # Shapes only: made-up values of a bot token, webhook URL and interaction token.
        "MTEyMzQ1Njc4OTAxMjM0NTY3OA.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB",
        "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz0123456789",
        "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmFiY2RlZmdoaWprbG1ub3A",
    ],
)
def test_redaction_patterns_catch_discord_secrets(
    collector_config: dict[str, Any], secret: str
) -> None:
    # Go RE2 and Python agree on these simple patterns.
    patterns = collector_config["processors"]["redaction"]["blocked_values"]
    assert any(re.search(p, secret) for p in patterns), secret


def test_redaction_patterns_leave_ordinary_values_alone(collector_config: dict[str, Any]) -> None:
    patterns = collector_config["processors"]["redaction"]["blocked_values"]
    for value in [
        "POST /channels/{channel_id}/messages",
        "command config set",
        "discord.gateway.event",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "https://discord.com/api/v10/channels/1234/messages",
    ]:
        assert not any(re.search(p, value) for p in patterns), value
