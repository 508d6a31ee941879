"""discord-otel's SDK configurator: the providers, exporters and resource.

``opentelemetry-instrument`` runs it through the ``opentelemetry_configurator``
entry point (after :class:`discord_otel.distro.DiscordOtelDistro` has set the
defaults); :func:`discord_otel.configure` runs the same code from a bot.

Exporters come from the standard variables (``OTEL_TRACES_EXPORTER``,
``OTEL_EXPORTER_OTLP_PROTOCOL``, ...), through the SDK's own entry-point
lookup, so anything the SDK accepts works here. What this adds: the
resource of the contract, bounded and counted queues, secret scrubbing on the
way out, an optional Prometheus scrape endpoint, the logging handler, and a
shutdown bounded in time on ``bot.close()``, SIGINT, SIGTERM and exit.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._configuration import (
    _get_exporter_names,
    _get_id_generator,
    _get_sampler,
    _import_exporters,
    _import_id_generator,
    _import_sampler,
    _OTelSDKConfigurator,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS,
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.semconv._incubating.attributes.telemetry_attributes import (
    TELEMETRY_DISTRO_NAME,
    TELEMETRY_DISTRO_VERSION,
)
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION

from discord_otel import semconv
from discord_otel.config import DiscordOtelSettings
from discord_otel.otlp_transport import transport_arguments
from discord_otel.pipeline import (
    CountingLogExporter,
    CountingMetricExporter,
    SafeSpanExporter,
    SignalCounts,
    TelemetryPipeline,
    _count_batch_processor,
)
from discord_otel.version import __version__

logger = logging.getLogger(__name__)

# Resource detectors run by default (service.instance.id is always added and the
# OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME detector always runs last).
# process.command_args stays off: a token passed on the command line must not leak.
DEFAULT_RESOURCE_DETECTORS = "host,process"
# Seconds an export may take unless OTEL_EXPORTER_OTLP[_<SIGNAL>]_TIMEOUT says otherwise:
# short enough that a black-holed Collector cannot hold a queue's worker for long.
DEFAULT_EXPORT_TIMEOUT = 5.0

# The module of the OTLP/HTTP span exporter, whose span encoder otlp_encoding replaces.
_OTLP_HTTP_SPAN_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"

_state_lock = threading.RLock()
_pipeline: TelemetryPipeline | None = None
_settings: DiscordOtelSettings | None = None


def get_settings() -> DiscordOtelSettings:
    """The process's settings, parsed (and warned about) once."""
    global _settings
    with _state_lock:
        if _settings is None:
            _settings = DiscordOtelSettings.from_environ()
        return _settings


def set_settings(settings: DiscordOtelSettings) -> None:
    global _settings
    with _state_lock:
        _settings = settings


def get_pipeline() -> TelemetryPipeline | None:
    """The pipeline discord-otel configured in this process, if any."""
    return _pipeline


def _user_service_name() -> str | None:
    value = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    return str(value) if value else None


def build_resource(
    service_name: str | None = None,
    service_version: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Resource:
    os.environ.setdefault(OTEL_EXPERIMENTAL_RESOURCE_DETECTORS, DEFAULT_RESOURCE_DETECTORS)
    attrs: dict[str, Any] = {
        TELEMETRY_DISTRO_NAME: semconv.DISTRO_NAME,
        TELEMETRY_DISTRO_VERSION: __version__,
    }
    attrs.update(attributes or {})
    if service_name:
        attrs[SERVICE_NAME] = service_name
    elif not _user_service_name():
        attrs[SERVICE_NAME] = semconv.DEFAULT_SERVICE_NAME
        logger.warning(
            "discord-otel: OTEL_SERVICE_NAME is not set; using service.name=%s",
            semconv.DEFAULT_SERVICE_NAME,
        )
    if service_version:
        attrs[SERVICE_VERSION] = service_version
    return Resource.create(attrs)


def _timeout_args(timeout_variable: str) -> dict[str, Any]:
    if os.environ.get(timeout_variable) or os.environ.get(OTEL_EXPORTER_OTLP_TIMEOUT):
        return {}
    return {"timeout": DEFAULT_EXPORT_TIMEOUT}


def _make_exporter(cls: type, timeout_variable: str) -> Any:
    kwargs = (
        _timeout_args(timeout_variable)
        if cls.__module__.startswith("opentelemetry.exporter.otlp")
        else {}
    )
    return cls(**kwargs, **transport_arguments(cls))


def _prometheus_reader(address: tuple[str, int]) -> MetricReader | None:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server
    except ImportError:  # pragma: no cover - a declared dependency
        logger.warning("discord-otel: opentelemetry-exporter-prometheus is not installed")
        return None
    host, port = address
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        logger.warning(
            "discord-otel: cannot serve Prometheus metrics on %s:%d (%s); not serving them",
            host,
            port,
            exc,
        )
        return None
    return PrometheusMetricReader()


def _exporter_classes(signal: Literal["traces", "metrics", "logs"]) -> dict[str, Any]:
    """The exporter classes the standard variables select for ``signal``; a bad
    value costs that signal its export (with one warning), never the bot."""
    try:
        names = _get_exporter_names(signal)
        index = ("traces", "metrics", "logs").index(signal)
        arguments: list[list[str]] = [[], [], []]
        arguments[index] = names
        found = _import_exporters(*arguments)
    except Exception as exc:
        logger.warning("discord-otel: %s are not exported: %s", signal, exc)
        return {}
    return dict(found[index])


def build_pipeline(
    settings: DiscordOtelSettings,
    *,
    resource: Resource,
    sampler: Sampler | None = None,
) -> TelemetryPipeline:
    """Providers, processors and readers from the standard variables and ``settings``;
    sets them as the global providers."""
    span_classes = _exporter_classes("traces")
    metric_classes = _exporter_classes("metrics")
    log_classes = _exporter_classes("logs")
    span_counts, metric_counts, log_counts = (
        SignalCounts("spans"),
        SignalCounts("metric exports"),
        SignalCounts("log records"),
    )

    if sampler is None:
        sampler = _import_sampler(_get_sampler())
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=sampler,
        id_generator=_import_id_generator(_get_id_generator()),
        shutdown_on_exit=False,
    )
    span_processors: list[BatchSpanProcessor] = []
    for span_class in span_classes.values():
        exporter = SafeSpanExporter(
            _make_exporter(span_class, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT), span_counts
        )
        processor = BatchSpanProcessor(exporter)
        _count_batch_processor(processor, span_counts)
        tracer_provider.add_span_processor(processor)
        span_processors.append(processor)

    readers: list[MetricReader] = []
    for metric_class in metric_classes.values():
        if issubclass(metric_class, MetricReader):
            readers.append(metric_class())
        else:
            metric_exporter: MetricExporter = _make_exporter(
                metric_class, OTEL_EXPORTER_OTLP_METRICS_TIMEOUT
            )
            readers.append(
                PeriodicExportingMetricReader(
                    CountingMetricExporter(metric_exporter, metric_counts)
                )
            )
    if settings.prometheus_address is not None:
        reader = _prometheus_reader(settings.prometheus_address)
        if reader is not None:
            readers.append(reader)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    log_processors: list[BatchLogRecordProcessor] = []
    for log_class in log_classes.values():
        log_exporter = CountingLogExporter(
            _make_exporter(log_class, OTEL_EXPORTER_OTLP_LOGS_TIMEOUT), log_counts
        )
        log_processor = BatchLogRecordProcessor(log_exporter)
        _count_batch_processor(log_processor, log_counts)
        logger_provider.add_log_record_processor(log_processor)
        log_processors.append(log_processor)

    if span_processors:
        trace.set_tracer_provider(tracer_provider)
        if any(c.__module__ == _OTLP_HTTP_SPAN_EXPORTER for c in span_classes.values()):
            from discord_otel import otlp_encoding  # only then: it loads the protobuf encoders

            # spans leave over OTLP/HTTP: encode them the fast way
            otlp_encoding.install(compiled=get_settings().compiled)
    # else (OTEL_TRACES_EXPORTER=none, "metrics only"): no global tracer provider,
    # so the instrumentations see the no-op tracer and build no span at all,
    # rather than building and ending every span for no processor.
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    return TelemetryPipeline(
        tracer_provider,
        meter_provider,
        logger_provider,
        span_processors=span_processors,
        log_processors=log_processors,
        metric_readers=readers,
        counts=(span_counts, metric_counts, log_counts),
        shutdown_timeout=settings.shutdown_timeout,
    )


def initialize(
    *,
    settings: DiscordOtelSettings | None = None,
    service_name: str | None = None,
    service_version: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    sampler: Sampler | None = None,
) -> TelemetryPipeline:
    """Configure the SDK once per process; later calls return the same pipeline."""
    global _pipeline
    from discord_otel import logs, shutdown

    with _state_lock:
        if _pipeline is not None:
            return _pipeline
        if settings is None:
            settings = get_settings()
        else:
            set_settings(settings)
        resource = build_resource(service_name, service_version, resource_attributes)
        pipeline = build_pipeline(settings, resource=resource, sampler=sampler)
        _pipeline = pipeline
        pipeline.call_before_shutdown(logs.uninstall_handler)
        logs.install_export_warning_limiter()
        shutdown.install_hooks(pipeline)
        if settings.health_address is not None:
            from discord_otel import health

            health.install(settings.health_address)
        return pipeline


class DiscordOtelConfigurator(_OTelSDKConfigurator):
    """The ``opentelemetry_configurator`` entry point."""

    def _configure(self, **kwargs: Any) -> None:
        from discord_otel.distro import sdk_disabled

        if sdk_disabled():  # no providers, handlers or hooks: the bot runs as without us
            return
        initialize()
