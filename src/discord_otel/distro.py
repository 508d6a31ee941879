"""The ``opentelemetry_distro`` entry point: defaults, and which instrumentations run.

Modelled on vendor distros (Elastic's EDOT): every default is set with
``os.environ.setdefault``, so any standard ``OTEL_*`` variable the user sets
still wins. Then, for each installed instrumentation, :meth:`load_instrumentor`
decides whether it runs and with which arguments:

* ``discord`` (ours), ``aiohttp-client`` (with a URL filter that redacts
  webhook and interaction tokens), ``asyncpg`` (SQL parameters only when
  ``OTEL_PYTHON_DISCORD_CAPTURE_SQL_PARAMETERS`` is on, plus the
  ``db.client.operation.duration`` histogram; its spans only when spans are
  exported), ``logging`` (our OTLP handler,
  scrubbed, with trace context) and ``system_metrics`` (the preset of
  ``OTEL_PYTHON_DISCORD_SYSTEM_METRICS``) run;
* instrumentations that only add noise to a bot (:data:`NOISY_INSTRUMENTATIONS`)
  are skipped;
* ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` still disables any of them (the
  auto-instrumentation loader applies it before asking the distro).
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS,
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_METRICS_EXEMPLAR_FILTER,
    OTEL_SDK_DISABLED,
)
from opentelemetry.util._importlib_metadata import EntryPoint

from discord_otel.config import DiscordOtelSettings

logger = logging.getLogger(__name__)

OTEL_SEMCONV_STABILITY_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"

DEFAULTS: dict[str, str] = {
    OTEL_TRACES_EXPORTER: "otlp",
    OTEL_METRICS_EXPORTER: "otlp",
    OTEL_LOGS_EXPORTER: "otlp",
    # http/protobuf to http://localhost:4318 (the exporters' default endpoint);
    # OTEL_EXPORTER_OTLP_PROTOCOL=grpc selects gRPC on localhost:4317.
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "cumulative",
    OTEL_METRICS_EXEMPLAR_FILTER: "trace_based",
    # The stable HTTP and database semantic conventions (url.template,
    # db.query.text, db.system.name...), as the contract uses them.
    OTEL_SEMCONV_STABILITY_OPT_IN: "http,database",
    # service.instance.id is always detected; process.* and host.name from these.
    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS: "host,process",
}

# Entry-point names of instrumentations that only add noise to a bot: the
# exporters' own HTTP/gRPC calls, every coroutine or thread as a span.
NOISY_INSTRUMENTATIONS = frozenset(
    {
        "asyncio",
        "threading",
        "urllib",
        "urllib3",
        "requests",
        "httpx",
        "grpc_client",
        "grpc_aio_client",
        "grpc_server",
        "grpc_aio_server",
        "sqlite3",
    }
)

# opentelemetry-instrumentation-system-metrics' metrics in the "preset": the
# process and the CPython runtime, no system.* host metrics.
SYSTEM_METRICS_PRESET: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
}


def apply_defaults(environ: Any = None) -> None:
    """Set discord-otel's defaults for every standard variable the user left unset."""
    target = os.environ if environ is None else environ
    for name, value in DEFAULTS.items():
        target.setdefault(name, value)


def _settings() -> DiscordOtelSettings:
    from discord_otel.configurator import get_settings

    return get_settings()


def load_instrumentation(name: str, instrumentor_class: Any, **kwargs: Any) -> bool:
    """Instrument one instrumentation the way discord-otel runs it; False if skipped."""
    settings = _settings()
    if name in NOISY_INSTRUMENTATIONS:
        logger.debug("discord-otel: not running the %s instrumentation (noise)", name)
        return False
    if name == "logging":
        from opentelemetry.instrumentation.logging.environment_variables import (
            OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION,
        )

        from discord_otel import logs
        from discord_otel.configurator import get_pipeline

        # Trace context on every record (for the console); our own handler exports.
        instrumentor_class().instrument(
            inject_trace_context=True, enable_log_auto_instrumentation=False, **kwargs
        )
        pipeline = get_pipeline()
        export = (
            os.environ.get(OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION, "true").strip().lower() != "false"
            and pipeline is not None
            and bool(pipeline.log_processors)
        )
        logs.install_logging(
            pipeline.logger_provider if pipeline is not None else None, export=export
        )
        return True
    if name == "aiohttp-client":
        from discord_otel.scrub import scrub_url

        kwargs.setdefault("url_filter", scrub_url)
        instrumentor_class().instrument(**kwargs)
        return True
    if name == "asyncpg":
        from discord_otel.asyncpg_metrics import AsyncPGMetricsInstrumentor

        # Ours first: the span instrumentation then wraps it, so the histogram
        # is recorded while the query's span is current (its exemplar).
        AsyncPGMetricsInstrumentor().instrument(**kwargs)
        if _traces_exported():
            from discord_otel.asyncpg_spans import skip_under_sampled_out, use_query_tracer

            instrumentor = instrumentor_class(capture_parameters=settings.capture_sql_parameters)
            skip_under_sampled_out(instrumentor)  # a dropped event's queries make no span
            instrumentor.instrument(**kwargs)
            use_query_tracer(instrumentor)  # the others' spans are made the cheap way
        else:  # spans only, and none would be exported: don't pay for them per query
            logger.debug("discord-otel: no spans exported, asyncpg span instrumentation off")
        return True
    if name == "system_metrics":
        if settings.system_metrics == "off":
            return False
        config = None if settings.system_metrics == "all" else dict(SYSTEM_METRICS_PRESET)
        instrumentor_class(config=config).instrument(**kwargs)
        return True
    instrumentor_class().instrument(**kwargs)
    return True


def _traces_exported() -> bool:
    """Whether the pipeline discord-otel configured exports spans (False with
    ``OTEL_TRACES_EXPORTER=none``); True when it configured nothing (a provider
    set up in code)."""
    from discord_otel.configurator import get_pipeline

    pipeline = get_pipeline()
    return pipeline is None or bool(pipeline.span_processors)


_loaded: set[str] = set()


def instrumentations_loaded() -> bool:
    """Whether the instrumentations were loaded (by ``opentelemetry-instrument`` or
    :func:`discord_otel.configure`)."""
    return bool(_loaded)


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: the bot runs with no telemetry and no hooks at all."""
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


class DiscordOtelDistro(BaseDistro):  # type: ignore[misc]
    """The ``opentelemetry_distro`` entry point."""

    def _configure(self, **kwargs: Any) -> None:
        apply_defaults()

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        # With the SDK disabled every span and metric would be a no-op, but the
        # hooks would still run on every event and request: install none.
        if sdk_disabled():
            return
        _loaded.add(entry_point.name)
        load_instrumentation(entry_point.name, entry_point.load(), **kwargs)


def freeze_startup_objects() -> None:
    """The ``opentelemetry_post_instrument`` hook: once instrumentation is set up,
    move every object alive now (the SDK, exporters, protobuf descriptors,
    discord.py's and the instrumentations' modules: tens of thousands, alive for
    the whole run) out of the cyclic garbage collector's scans with
    ``gc.freeze()``. Without it, they make every collection of the bot slower
    (benchmarks/diagnosis.md). Garbage is collected first, so only live objects
    are frozen. ``OTEL_PYTHON_DISCORD_GC_FREEZE=false`` turns it off. Also with
    ``OTEL_SDK_DISABLED=true``: ``opentelemetry-instrument`` has imported the SDK
    all the same, and its objects would otherwise slow the bot's collections."""
    if not _settings().gc_freeze:
        return
    gc.collect()
    gc.freeze()
