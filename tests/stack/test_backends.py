"""Prometheus, Tempo and Loki configs: the settings the cross-links depend on."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.stack.conftest import REPO, load_yaml


def test_prometheus_promotes_the_service_identity() -> None:
    config = load_yaml(REPO / "prometheus" / "prometheus.yml")
    promoted = config["otlp"]["promote_resource_attributes"]
    assert {"service.name", "service.instance.id", "service.namespace"} <= set(promoted)
    assert config["storage"]["exemplars"]["max_exemplars"] > 0


def test_prometheus_scrapes_the_stack_components(compose: dict[str, Any]) -> None:
    config = load_yaml(REPO / "prometheus" / "prometheus.yml")
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in compose["services"], target


def test_tempo_remote_writes_span_metrics_with_exemplars_to_prometheus(
    compose: dict[str, Any],
) -> None:
    config = load_yaml(REPO / "tempo" / "tempo.yaml")
    (remote_write,) = config["metrics_generator"]["storage"]["remote_write"]
    assert remote_write["send_exemplars"] is True
    url = urlsplit(remote_write["url"])
    assert url.hostname in compose["services"]
    assert url.port == 9090
    assert url.path == "/api/v1/write"
    processors = config["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert {"span-metrics", "service-graphs"} <= set(processors)


def test_loki_accepts_otlp_with_structured_metadata() -> None:
    config = load_yaml(REPO / "loki" / "loki.yaml")
    limits = config["limits_config"]
    assert limits["allow_structured_metadata"] is True
    assert config["schema_config"]["configs"][-1]["schema"] == "v13"  # needed for metadata
    labels = limits["otlp_config"]["resource_attributes"]["attributes_config"]
    assert any("service.instance.id" in rule["attributes"] for rule in labels)
