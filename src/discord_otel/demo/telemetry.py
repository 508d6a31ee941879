"""The demo's OpenTelemetry set-up: in-process stores always, OTLP when a Collector answers.

The demo builds its providers itself rather than through
:func:`discord_otel.configure`, because the SDK's ``MeterProvider`` takes its
metric readers only when it is created and the live view needs a reader of its
own next to the OTLP one. Everything else is discord-otel's: the distro's
defaults for the standard ``OTEL_*`` variables, the resource, the secret
scrubbing of spans, the logging handler (scrubbed, with trace ids), the
counted exporters and the bounded shutdown of :class:`~discord_otel.pipeline.TelemetryPipeline`.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from discord_otel.demo.store import LogStore, MetricStore, SpanStore
from discord_otel.pipeline import (
    CountingLogExporter,
    CountingMetricExporter,
    SafeSpanExporter,
    SignalCounts,
    TelemetryPipeline,
)

SERVICE_NAME = "discord-otel-demo"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
PROBE_TIMEOUT = 1.0
# Metrics reach the Collector every 10 s in the demo (the SDK's default is 60 s).
DEMO_METRIC_EXPORT_INTERVAL_MS = "10000"


@dataclass(frozen=True)
class Destination:
    """Where the telemetry goes besides the terminal, and why."""

    otlp: bool
    protocol: str
    endpoint: str
    reason: str


def otlp_protocol() -> str:
    value = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf"
    return "grpc" if value == "grpc" else "http/protobuf"


def otlp_endpoint(protocol: str) -> str:
    default = DEFAULT_GRPC_ENDPOINT if protocol == "grpc" else DEFAULT_HTTP_ENDPOINT
    return (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or default).rstrip("/")


def _headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` (``key=value,...``, URL-encoded)."""
    headers: dict[str, str] = {}
    for item in os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


def probe(protocol: str, endpoint: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Does an OTLP receiver answer at ``endpoint``? (and a sentence saying what was seen)

    Over HTTP an empty trace export is posted to ``/v1/traces``: a Collector
    accepts it with a 2xx. Over gRPC only the TCP connection is tried.
    """
    parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if protocol == "grpc":
        host = parsed.hostname or "localhost"
        port = parsed.port or 4317
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True, f"an OTLP/gRPC endpoint accepts connections on {host}:{port}"
        except OSError as exc:
            return False, f"nothing answers on {host}:{port} ({exc.strerror or exc})"
    url = endpoint + "/v1/traces"
    request = urllib.request.Request(
        url,
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-protobuf", **_headers()},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered HTTP {exc.code}, not an OTLP receiver's 2xx"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no OTLP receiver answers on {endpoint} ({reason})"
    if 200 <= status < 300:
        return True, f"an OTLP receiver answers on {endpoint}"
    return False, f"{url} answered HTTP {status}"


def choose_destination(export: str) -> Destination:
    """``auto``: OTLP when a receiver answers; ``otlp``: always; ``terminal``: never."""
    protocol = otlp_protocol()
    endpoint = otlp_endpoint(protocol)
    if export == "terminal":
        return Destination(False, protocol, endpoint, "--export terminal")
    if export == "otlp":
        return Destination(True, protocol, endpoint, "--export otlp")
    answers, reason = probe(protocol, endpoint)
    return Destination(answers, protocol, endpoint, reason)


def _otlp_exporters(protocol: str) -> tuple[Any, Any, Any]:
    """Span, metric and log exporters; they read the endpoint and headers from the
    standard ``OTEL_EXPORTER_OTLP_*`` variables."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # type: ignore[assignment]
            OTLPLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    timeout = 5
    return (
        OTLPSpanExporter(timeout=timeout),
        OTLPMetricExporter(timeout=timeout),
        OTLPLogExporter(timeout=timeout),
    )


@dataclass
class DemoTelemetry:
    destination: Destination
    pipeline: TelemetryPipeline
    spans: SpanStore
    logs: LogStore
    metrics: MetricStore


def setup(destination: Destination) -> DemoTelemetry:
    """Build and install the global providers, the logging handler and the
    discord.py instrumentation."""
    from discord_otel import distro, logs
    from discord_otel.configurator import build_resource

    os.environ.setdefault("OTEL_SERVICE_NAME", SERVICE_NAME)
    os.environ.setdefault("OTEL_METRIC_EXPORT_INTERVAL", DEMO_METRIC_EXPORT_INTERVAL_MS)
    distro.apply_defaults()
    resource = build_resource()

    span_store, log_store, metric_store = SpanStore(), LogStore(), MetricStore()
    counts = (SignalCounts("spans"), SignalCounts("metric exports"), SignalCounts("log records"))
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(span_store)
    readers: list[MetricReader] = [metric_store.reader]
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(log_store)
    span_processors: list[BatchSpanProcessor] = []
    log_processors: list[BatchLogRecordProcessor] = []
    if destination.otlp:
        span_exporter, metric_exporter, log_exporter = _otlp_exporters(destination.protocol)
        span_processor = BatchSpanProcessor(SafeSpanExporter(span_exporter, counts[0]))
        tracer_provider.add_span_processor(span_processor)
        span_processors.append(span_processor)
        readers.append(
            PeriodicExportingMetricReader(CountingMetricExporter(metric_exporter, counts[1]))
        )
        log_processor = BatchLogRecordProcessor(CountingLogExporter(log_exporter, counts[2]))
        logger_provider.add_log_record_processor(log_processor)
        log_processors.append(log_processor)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )

    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    pipeline = TelemetryPipeline(
        tracer_provider,
        meter_provider,
        logger_provider,
        span_processors=span_processors,
        log_processors=log_processors,
        metric_readers=readers,
        counts=counts,
        shutdown_timeout=5.0,
    )
    logs.install_logging(logger_provider)
    pipeline.call_before_shutdown(logs.uninstall_handler)
    instrument(tracer_provider, meter_provider)
    return DemoTelemetry(destination, pipeline, span_store, log_store, metric_store)


def instrument(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """``DiscordInstrumentor().instrument(...)`` with the demo's providers."""
    import discord_otel

    discord_otel.DiscordInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
