"""Python ``logging`` -> OTLP, correlated with spans and free of secrets.

* :class:`OtlpLoggingHandler` (opentelemetry-instrumentation-logging's
  ``LoggingHandler``) sits on the root logger, so every record, discord.py's
  ``discord.*`` loggers included, is exported with the current span's
  trace_id and span_id. The export pipeline's own loggers (``opentelemetry.*``,
  ``urllib3``, ``grpc``) are never exported: a failing exporter cannot feed
  its warnings back into the export.
* Secrets are scrubbed from every record when it is made (message, arguments
  and traceback text), so console and file handlers never see them either:
  discord.py logs full webhook and interaction URLs at DEBUG and in its
  rate-limit warnings.
* Console handlers (discord.py's ``setup_logging``, ``logging.basicConfig``)
  get ``trace_id=...`` appended to lines written while a span is current.
* The exporters' own warnings are rate-limited: "queue full" once, and one
  export failure per minute with a count of those suppressed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.logging.handler import (
    LoggingHandler,
    _overwrite_logging_config_fns,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import get_current_span

from discord_otel.scrub import scrub_attributes, scrub_text

# Loggers whose records are never exported over OTLP.
EXCLUDED_LOGGER_PREFIXES = (
    "opentelemetry",
    "urllib3",
    "requests",
    "grpc",
    "discord_otel.pipeline",
)
# The trace-context attributes the logging instrumentation injects into records:
# exported as the log record's trace_id/span_id, not repeated as attributes.
_INJECTED_ATTRIBUTES = ("otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName")

# Loggers of the export pipeline whose warnings are rate-limited.
EXPORT_LOGGERS = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.common.http",
)
EXPORT_WARNING_INTERVAL = 60.0


def _is_excluded(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in EXCLUDED_LOGGER_PREFIXES)


class OtlpLoggingHandler(LoggingHandler):
    """The instrumentation's OTLP handler, minus the pipeline's own loggers and secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _is_excluded(record.name):
            return False
        return bool(super().filter(record))

    def _translate(self, record: logging.LogRecord) -> Any:
        log_record = super()._translate(record)
        if isinstance(log_record.body, str):
            log_record.body = scrub_text(log_record.body)
        attributes = dict(log_record.attributes or {})
        for key in _INJECTED_ATTRIBUTES:
            attributes.pop(key, None)
        log_record.attributes = scrub_attributes(attributes) or attributes
        return log_record

    def flush(self) -> None:
        """The pipeline flushes on shutdown, within its time bound; ``logging.shutdown``
        must not start an unbounded export of its own."""


class TraceIdFormatter(logging.Formatter):
    """Wraps a console formatter: appends `` trace_id=...`` to the first line of
    records written while a span is current."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        trace_id = getattr(record, "otelTraceID", None)
        if trace_id is None:
            context = get_current_span().get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
        if not trace_id or trace_id == "0":
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} trace_id={trace_id}{newline}{rest}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.inner.formatTime(record, datefmt)

    def formatException(self, ei: Any) -> str:
        return self.inner.formatException(ei)


def decorate_console_handlers(logger: logging.Logger | None = None) -> None:
    """Give the stream handlers of ``logger`` (root by default) trace ids."""
    for handler in (logger or logging.getLogger()).handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler.formatter, TraceIdFormatter
        ):
            handler.setFormatter(TraceIdFormatter(handler.formatter))


class _ScrubbingRecordFactory:
    """Wraps the log record factory: records are born without secrets."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handlers to report
            return record
        clean = scrub_text(message)
        if clean is not message and clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            clean_text = scrub_text(text)
            if clean_text != text:
                record.exc_text = clean_text
        return record


class ExportWarningLimiter(logging.Filter):
    """Rate-limits the export pipeline's warnings (attached to its loggers)."""

    def __init__(self, interval: float = EXPORT_WARNING_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[tuple[str, Any], float] = {}
        self._suppressed: dict[tuple[str, Any], int] = {}
        self.queue_full_reported: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Queue full, dropping"):
            # Once per signal; the counts are reported at shutdown.
            signal = str(record.args[0]) if record.args else "telemetry"  # type: ignore[index]
            with self._lock:
                if signal in self.queue_full_reported:
                    return False
                self.queue_full_reported.add(signal)
            record.msg = (
                "discord-otel: the %s export queue is full, new items are dropped until "
                "the exporter catches up (counts are reported at shutdown)"
            )
            record.args = (signal,)
            return True
        if message.startswith("Shutdown called, ignoring"):
            return False
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        return True


_install_lock = threading.Lock()
_limiter: ExportWarningLimiter | None = None
_handler: OtlpLoggingHandler | None = None
_patched = False


def install_export_warning_limiter() -> ExportWarningLimiter:
    global _limiter
    with _install_lock:
        if _limiter is None:
            _limiter = ExportWarningLimiter()
            for name in EXPORT_LOGGERS:
                logging.getLogger(name).addFilter(_limiter)
        return _limiter


def install_record_scrubber() -> None:
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _ScrubbingRecordFactory):
        logging.setLogRecordFactory(_ScrubbingRecordFactory(factory))


def _patch_console_setup() -> None:
    """After ``logging.basicConfig`` or discord.py's ``setup_logging``, decorate
    the handlers they installed."""
    global _patched
    if _patched:
        return
    _patched = True

    def after(fn: Callable[..., Any], target: Callable[[], logging.Logger]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            decorate_console_handlers(target())
            return result

        return wrapper

    logging.basicConfig = after(logging.basicConfig, logging.getLogger)
    try:
        import discord.utils
    except ImportError:  # pragma: no cover - discord.py is a dependency
        return
    original = discord.utils.setup_logging

    @functools.wraps(original)
    def setup_logging(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        root = kwargs.get("root", True)
        decorate_console_handlers(logging.getLogger() if root else logging.getLogger("discord"))

    discord.utils.setup_logging = setup_logging


def install_logging(
    logger_provider: LoggerProvider | None, *, export: bool = True, level: int = logging.NOTSET
) -> OtlpLoggingHandler | None:
    """Install scrubbing, console trace ids and (when ``export``) the OTLP handler.

    Idempotent: returns the handler installed by the first call."""
    global _handler
    install_export_warning_limiter()
    install_record_scrubber()
    _patch_console_setup()
    decorate_console_handlers()
    with _install_lock:
        if _handler is None and export and logger_provider is not None:
            handler = OtlpLoggingHandler(level=level, logger_provider=logger_provider)
            logging.getLogger().addHandler(handler)
            # Keep it across logging.basicConfig/dictConfig/fileConfig calls (and
            # let basicConfig still add its console handler).
            _overwrite_logging_config_fns(handler)
            _handler = handler
        return _handler


def uninstall_handler() -> None:
    """Detach the OTLP handler (done at shutdown, before the final report)."""
    global _handler
    with _install_lock:
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None
