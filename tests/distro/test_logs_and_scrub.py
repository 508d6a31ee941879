"""Secret scrubbing, the OTLP handler's exclusions, console trace ids, and the
exporters' rate-limited warnings (in process, with in-memory providers)."""

from __future__ import annotations

import io
import logging

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from discord_otel import logs, scrub
from discord_otel.scrub import register_secret, scrub_attributes, scrub_span, scrub_text, scrub_url

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZmdoaWprbG1ub3A"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"POST https://discord.com/api/v10/interactions/123/{INTERACTION_TOKEN}/callback",
            "POST https://discord.com/api/v10/interactions/123/REDACTED/callback",
        ),
        (
            f"https://discord.com/api/v10/webhooks/42/{INTERACTION_TOKEN}/messages/@original?wait=1",
            "https://discord.com/api/v10/webhooks/42/REDACTED/messages/@original?wait=1",
        ),
        (f"token is {BOT_TOKEN}.", "token is REDACTED."),
        (
            "{'Authorization': 'Bot abcdefghijklmnopqrstuvwxyz'}",
            "{'Authorization': 'Bot REDACTED'}",
        ),
        ("GET /channels/123/messages", "GET /channels/123/messages"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_registered_secret_and_url_filter() -> None:
    register_secret("simulated.Zm9vYmFyYmF6cXV4")
    assert scrub_text("login with simulated.Zm9vYmFyYmF6cXV4 ok") == "login with REDACTED ok"
    import yarl

    url = yarl.URL(f"http://127.0.0.1:5000/api/v10/webhooks/9/{INTERACTION_TOKEN}")
    assert scrub_url(url) == "http://127.0.0.1:5000/api/v10/webhooks/9/REDACTED"


def test_scrub_cache_is_bounded() -> None:
    for index in range(3 * scrub._CACHE_LIMIT):
        text = f"GET /channels/{index}/messages"
        assert scrub_text(text) is text
        assert len(scrub._cache) <= scrub._CACHE_LIMIT
    long_text = "x" * (scrub._CACHEABLE_LENGTH + 1)
    assert scrub_text(long_text) is long_text
    assert long_text not in scrub._cache
    # unchanged strings come back as the caller's object, not the cached one
    first, second = "".join(["command ", "ping"]), "".join(["command ", "ping"])
    assert first is not second
    assert scrub_text(first) is first
    assert scrub_text(second) is second


def test_secret_registered_after_caching_is_redacted() -> None:
    secret = "late-registered-secret-8f3a1c"
    text = f"deploy key {secret} in use"
    attributes = {"note": text, "count": 3}
    assert scrub_text(text) is text  # now cached as clean
    assert scrub_attributes(attributes) is None
    register_secret(secret)
    assert scrub_text(text) == "deploy key REDACTED in use"
    assert scrub_attributes(attributes) == {"note": "deploy key REDACTED in use", "count": 3}


def test_tokens_in_repeated_values_are_redacted() -> None:
    webhook = f"https://discord.com/api/v10/webhooks/42/{INTERACTION_TOKEN}"
    header = "Bot abcdefghijklmnopqrstuvwxyz"
    tracer = TracerProvider().get_tracer("t")
    for _ in range(3):
        assert scrub_text(webhook) == "https://discord.com/api/v10/webhooks/42/REDACTED"
        assert scrub_text(header) == "Bot REDACTED"
        assert scrub_attributes({"token": BOT_TOKEN, "ids": [1, BOT_TOKEN]}) == {
            "token": "REDACTED",
            "ids": [1, "REDACTED"],
        }
        span = tracer.start_span(
            f"POST /webhooks/1/{INTERACTION_TOKEN}",
            kind=SpanKind.CLIENT,
            attributes={"url.full": webhook, "http.response.status_code": 200},
        )
        span.add_event("log", {"message": header})
        span.set_status(Status(StatusCode.ERROR, f"bad token {BOT_TOKEN}"))
        span.end()
        clean = scrub_span(span)  # type: ignore[arg-type]
        exported = str((clean.name, dict(clean.attributes or {}), clean.events, clean.status))
        for secret in (INTERACTION_TOKEN, BOT_TOKEN, "abcdefghijklmnopqrstuvwxyz"):
            assert secret not in exported
        assert clean.name == "POST /webhooks/1/REDACTED"
        assert dict(clean.attributes or {})["http.response.status_code"] == 200
        # a span without secrets is exported as it is
        plain = tracer.start_span("command ping", attributes={"discord.shard.id": 0})
        plain.end()
        assert scrub_span(plain) is plain  # type: ignore[arg-type]


@pytest.fixture
def otlp_logger() -> tuple[logging.Logger, InMemoryLogRecordExporter, logs.OtlpLoggingHandler]:  # type: ignore[misc]
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = logs.OtlpLoggingHandler(logger_provider=provider)
    logs.install_record_scrubber()
    root = logging.getLogger("distro_test_root")
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield root, exporter, handler
    root.removeHandler(handler)
    provider.shutdown()


def test_handler_scrubs_correlates_and_excludes_the_pipeline(otlp_logger) -> None:  # type: ignore[no-untyped-def]
    root, exporter, _ = otlp_logger
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("command ping") as span:
        root.getChild("discord.webhook").warning(
            "POST %s responded with 429", f"https://x/api/webhooks/1/{INTERACTION_TOKEN}"
        )
    # the exporter's own warnings never go back into the export
    pipeline_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    record = pipeline_logger.makeRecord(
        pipeline_logger.name, logging.ERROR, __file__, 1, "Failed to export", (), None
    )
    otlp_logger[2].handle(record)
    exported = exporter.get_finished_logs()
    assert len(exported) == 1
    log = exported[0].log_record
    assert log.body == "POST https://x/api/webhooks/1/REDACTED responded with 429"
    context = span.get_span_context()
    assert log.trace_id == context.trace_id
    assert log.span_id == context.span_id
    assert not any(str(key).startswith("otel") for key in (log.attributes or {}))


def test_exception_text_is_scrubbed(otlp_logger) -> None:  # type: ignore[no-untyped-def]
    root, exporter, _ = otlp_logger
    try:
        raise RuntimeError(f"failed POST /interactions/5/{INTERACTION_TOKEN}/callback")
    except RuntimeError:
        root.exception("request failed")
    attributes = exporter.get_finished_logs()[0].log_record.attributes or {}
    assert INTERACTION_TOKEN not in str(dict(attributes))
    assert "REDACTED" in str(attributes["exception.message"])


def test_console_formatter_shows_trace_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    test_logger = logging.getLogger("distro_test_console")
    test_logger.propagate = False
    test_logger.addHandler(handler)
    logs.decorate_console_handlers(test_logger)
    tracer = TracerProvider().get_tracer("t")
    try:
        test_logger.warning("outside")
        with tracer.start_as_current_span("s") as span:
            test_logger.warning("inside")
    finally:
        test_logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING outside"
    assert lines[1] == f"WARNING inside trace_id={span.get_span_context().trace_id:032x}"


def test_export_warnings_are_rate_limited() -> None:
    limiter = logs.ExportWarningLimiter(interval=60)

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("opentelemetry.x", logging.WARNING, __file__, 1, msg, args, None)

    queue_full = [limiter.filter(record("Queue full, dropping %s.", "span")) for _ in range(1000)]
    assert queue_full.count(True) == 1
    failures = [limiter.filter(record("Failed to export %s batch", "spans")) for _ in range(50)]
    assert failures.count(True) == 1
    assert not limiter.filter(record("Shutdown called, ignoring %s.", "span"))
