"""Which HTTP transport the OTLP/HTTP exporters get: urllib3 only where requests
would have taken nothing from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from discord_otel.otlp_transport import transport_arguments

HTTP_EXPORTERS = (OTLPSpanExporter, OTLPMetricExporter, OTLPLogExporter)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NETRC", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    return {}


@pytest.mark.parametrize("exporter", HTTP_EXPORTERS)
def test_urllib3_when_nothing_in_the_environment_matters(
    exporter: type, clean_environment: dict[str, str]
) -> None:
    transport = transport_arguments(exporter, clean_environment)["_transport"]
    assert type(transport).__name__ == "Urllib3HTTPTransport"
    # and the exporter takes it
    built = exporter(endpoint="http://127.0.0.1:9/v1/x", **transport_arguments(exporter, {}))
    assert type(built._client._transport).__name__ == "Urllib3HTTPTransport"


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem"},
        {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "/etc/key.pem"},
        {"OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": "/etc/cert.pem"},
        {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER": "mine"},
        {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER": "mine"},
        {"NETRC": "/etc/netrc"},
    ],
)
def test_exporter_settings_keep_the_default_transport(
    variables: dict[str, str], clean_environment: dict[str, str]
) -> None:
    assert transport_arguments(OTLPSpanExporter, variables) == {}


def test_a_proxy_keeps_the_default_transport(
    monkeypatch: pytest.MonkeyPatch, clean_environment: dict[str, str]
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert transport_arguments(OTLPSpanExporter, {}) == {}


def test_a_netrc_file_keeps_the_default_transport(
    tmp_path: Path, clean_environment: dict[str, str]
) -> None:
    (tmp_path / ".netrc").write_text("machine collector login a password b\n")
    assert transport_arguments(OTLPSpanExporter, {}) == {}


def test_the_ca_bundle_requests_would_use(
    tmp_path: Path, clean_environment: dict[str, str]
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    transport = transport_arguments(OTLPSpanExporter, {"REQUESTS_CA_BUNDLE": str(bundle)})
    assert transport["_transport"]._pool.connection_pool_kw["ca_certs"] == str(bundle)
    # a directory of certificates: urllib3's transport takes a file only
    assert transport_arguments(OTLPSpanExporter, {"CURL_CA_BUNDLE": str(tmp_path)}) == {}
    # none set: certifi's bundle, as requests
    import certifi

    default = transport_arguments(OTLPSpanExporter, {})["_transport"]
    assert default._pool.connection_pool_kw["ca_certs"] == certifi.where()


def test_other_exporters_are_left_alone(clean_environment: dict[str, str]) -> None:
    assert transport_arguments(GrpcSpanExporter, {}) == {}
