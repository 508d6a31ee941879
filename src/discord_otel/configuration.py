"""``discord_otel.configure()``: the zero-code setup, from code.

For bots that cannot run under ``opentelemetry-instrument``::

    import discord_otel

    discord_otel.configure(service_name="my-bot")
    bot.run(token)

It applies the distro's defaults, builds the same providers as the
configurator, and runs the same instrumentations (discord, aiohttp-client,
asyncpg, logging, system metrics; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
applies). Keyword arguments override the matching environment variables.
Idempotent: a second call (or a call under ``opentelemetry-instrument``)
returns the pipeline already running.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
)
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from discord_otel import configurator, distro
from discord_otel.config import parse_address
from discord_otel.pipeline import TelemetryPipeline

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_instrumented = False

PROTOCOLS = ("http/protobuf", "grpc")


def _address(value: str | tuple[str, int] | None) -> tuple[str, int] | None:
    if value is None or isinstance(value, tuple):
        return value
    return parse_address(value)


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    sampling_ratio: float | None = None,
    prometheus_address: str | tuple[str, int] | None = None,
    health_address: str | tuple[str, int] | None = None,
    shutdown_timeout: float | None = None,
    system_metrics: str | None = None,
    capture_sql_parameters: bool | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    instrument: bool = True,
) -> TelemetryPipeline:
    """Set up traces, metrics and logs for this process; returns the pipeline.

    ``endpoint``/``protocol`` set ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` or ``grpc``);
    ``sampling_ratio`` samples that share of new traces (parent-based).
    ``prometheus_address`` and ``health_address`` are ``host:port`` (host
    defaults to 127.0.0.1). ``instrument=False`` builds the providers only.
    """
    global _instrumented
    with _lock:
        _instrumented = _instrumented or distro.instrumentations_loaded()
        existing = configurator.get_pipeline()
        if existing is not None and (_instrumented or not instrument):
            return existing
        if protocol is not None:
            if protocol not in PROTOCOLS:
                raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
            os.environ[OTEL_EXPORTER_OTLP_PROTOCOL] = protocol
        if endpoint is not None:
            os.environ[OTEL_EXPORTER_OTLP_ENDPOINT] = endpoint
        distro.apply_defaults()
        if existing is None:
            settings = configurator.get_settings()
            overrides: dict[str, Any] = {}
            if prometheus_address is not None:
                overrides["prometheus_address"] = _address(prometheus_address)
            if health_address is not None:
                overrides["health_address"] = _address(health_address)
            if shutdown_timeout is not None:
                overrides["shutdown_timeout"] = float(shutdown_timeout)
            if system_metrics is not None:
                overrides["system_metrics"] = system_metrics
            if capture_sql_parameters is not None:
                overrides["capture_sql_parameters"] = capture_sql_parameters
            if overrides:
                settings = dataclasses.replace(settings, **overrides)
            sampler = None
            if sampling_ratio is not None:
                if not 0.0 <= sampling_ratio <= 1.0:
                    raise ValueError("sampling_ratio must be between 0 and 1")
                sampler = ParentBasedTraceIdRatio(sampling_ratio)
            existing = configurator.initialize(
                settings=settings,
                service_name=service_name,
                service_version=service_version,
                resource_attributes=resource_attributes,
                sampler=sampler,
            )
        if instrument and not _instrumented:
            _instrumented = True
            _instrument_all()
        return existing


def _instrument_all() -> None:
    from opentelemetry.instrumentation.auto_instrumentation._load import _load_instrumentors

    _load_instrumentors(distro.DiscordOtelDistro())  # type: ignore[no-untyped-call]
