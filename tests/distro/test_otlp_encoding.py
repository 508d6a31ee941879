"""The fast OTLP span encoder (discord_otel.otlp_encoding) makes the same
``ExportTraceServiceRequest`` as the stock encoder, stays bounded, falls back to
the stock encoder rather than lose a batch, and is what the OTLP/HTTP exporter
uses once installed (by the configurator when spans go out over OTLP/HTTP).

Every test runs twice: with the compiled half (``discord_otel._otlp_speedups``,
built by the install) and with the Python code alone."""

from __future__ import annotations

import enum
import logging
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from discord_otel import otlp_encoding, scrub
from tests.distro.conftest import REPO, bot_env, c_compiler_found
from tests.fixtures.otlp_receiver import OtlpReceiver


def _parse(data: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(data)


def _pb_spans(request: ExportTraceServiceRequest) -> list[Any]:
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def _assert_same_as_stock(spans: Sequence[ReadableSpan], *, fast_path: bool = True) -> bytes:
    """Encode ``spans`` both ways and compare the parsed messages; with ``fast_path``
    the bytes must come from the fast path itself, not from its fallback."""
    expected = stock_encode(spans).SerializePartialToString()
    if fast_path:
        assert _parse(otlp_encoding._encode(spans)) == _parse(expected)
    encoded = otlp_encoding.encode_spans(spans)
    data = encoded.SerializePartialToString()
    assert encoded.SerializeToString() == data
    assert encoded.ByteSize() == len(data)
    assert _parse(data) == _parse(expected)
    return data


COMPILED = otlp_encoding._load_speedups()


@pytest.fixture(autouse=True, params=["compiled", "python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which encoder the test exercises: the C half with the Python code, or Python alone."""
    if request.param == "compiled" and COMPILED is None:
        pytest.skip("discord_otel._otlp_speedups is not built here")
    chosen = COMPILED if request.param == "compiled" else None
    monkeypatch.setattr(otlp_encoding, "speedups", chosen)
    monkeypatch.setattr(otlp_encoding, "_built", chosen)  # what install() puts in use
    return str(request.param)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    otlp_encoding.clear_caches()
    # whatever a test installs (or a monkeypatch puts back), the stock one afterwards
    monkeypatch.setattr(trace_exporter, "encode_spans", stock_encode)
    yield
    otlp_encoding.uninstall()


class _Provider:
    """A real TracerProvider whose finished spans land in memory."""

    def __init__(self, resource: Resource, limits: SpanLimits | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=resource, span_limits=limits)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def _remote_context(trace_state: TraceState | None = None) -> SpanContext:
    return SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=trace_state,
    )


EVERY_VALUE_TYPE: dict[str, Any] = {
    "str": "INTERACTION_CREATE",
    "str.non_ascii": "héllo wörld ✓ 日本語 🎉",
    "str.empty": "",
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.small": 7,
    "int.negative": -42,
    "int.snowflake": 1300000000000000001,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "float": 0.25,
    "float.zero": 0.0,
    "float.negative": -1.5e300,
    "float.negative-zero": -0.0,
    "float.infinite": float("-inf"),
    "float.tiny": 5e-324,
    "seq.str": ("a", "", "é"),
    "seq.int": (1, -2, 2**63 - 1),
    "seq.float": (0.5, -0.0),
    "seq.bool": (True, False),
    "seq.empty": (),
}


def _sdk_spans() -> list[ReadableSpan]:
    """Varied spans from real providers: two resources, several scopes, interleaved."""
    bot = _Provider(Resource.create({"service.name": "bot", "discord.shard.count": 2}))
    worker = _Provider(
        Resource.create({"service.name": "worker"}, schema_url="https://opentelemetry.io/s/1.26")
    )
    limited = _Provider(
        Resource.create({"service.name": "limited"}),
        SpanLimits(
            max_span_attributes=2,
            max_events=1,
            max_links=1,
            max_event_attributes=1,
            max_link_attributes=1,
        ),
    )
    gateway = bot.provider.get_tracer(
        "discord_otel.gateway",
        "0.3.0",
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        attributes={"scope.attr": "x", "scope.n": 3},
    )
    commands = bot.provider.get_tracer("discord_otel.commands")
    jobs = worker.provider.get_tracer("jobs", "1.0")
    small = limited.provider.get_tracer("limited")

    for index, kind in enumerate(SpanKind):
        root = gateway.start_span(
            f"gateway {kind.name}",
            kind=kind,
            attributes={"discord.gateway.event": "INTERACTION_CREATE", "discord.shard.id": 0},
            start_time=1_700_000_000_000_000_000 + index,
        )
        child = commands.start_span(
            "command ping",
            context=set_span_in_context(root),
            kind=SpanKind.SERVER,
            attributes={"discord.command.name": "ping", "index": index},
        )
        child.add_event("cache hit", {"hit": True, "keys": ("a", "b")}, timestamp=123456789)
        child.add_event("no attributes")
        child.set_status(Status(StatusCode.OK))
        child.end()
        job = jobs.start_span("job", kind=SpanKind.INTERNAL, attributes=EVERY_VALUE_TYPE)
        job.end(end_time=1_700_000_001_000_000_000)
        root.set_status(Status(StatusCode.ERROR, "429 Too Many Requests: ✗"))
        root.end()

    remote = NonRecordingSpan(_remote_context(TraceState([("vendor", "v1"), ("other", "o2")])))
    with gateway.start_as_current_span(
        "continued from a remote parent",
        context=set_span_in_context(remote),
        kind=SpanKind.CONSUMER,
        links=[
            Link(_remote_context(), {"link.kind": "follows", "n": 1}),
            Link(
                SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1)),
                {"local": True},
            ),
        ],
    ) as span:
        span.set_attribute("http.request.method", "POST")
        span.record_exception(ValueError("boom ✗"))
    with commands.start_as_current_span("error without description") as span:
        span.set_status(StatusCode.ERROR)
    with commands.start_as_current_span(""):  # empty name
        pass

    over = small.start_span(
        "over the limits",
        attributes={"a": 1, "b": 2, "c": 3, "d": "four"},
        links=[
            Link(_remote_context(), {"z": 3}),
            Link(_remote_context(), {"x": 1, "y": 2}),  # kept (the oldest is dropped)
        ],
    )
    for n in range(3):
        over.add_event(f"event {n}", {"n": n, "m": -n})
    over.end()

    # interleave the providers' spans: the grouping must not depend on order
    spans = bot.spans() + limited.spans()
    others = worker.spans()
    mixed: list[ReadableSpan] = []
    for index, span in enumerate(spans):
        mixed.append(span)
        if index < len(others):
            mixed.append(others[index])
    return mixed


def test_sdk_spans_encode_as_the_stock_encoder() -> None:
    spans = _sdk_spans()
    data = _assert_same_as_stock(spans)
    request = _parse(data)
    assert len(request.resource_spans) == 3
    by_name = {span.name: span for span in _pb_spans(request)}
    assert len(_pb_spans(request)) == len(spans)
    over = by_name["over the limits"]
    assert (over.dropped_attributes_count, over.dropped_events_count) == (2, 2)
    assert over.dropped_links_count == 1
    assert over.links[0].dropped_attributes_count == 1
    remote = by_name["continued from a remote parent"]
    assert remote.flags == 0x300  # has is_remote, is remote
    assert remote.trace_state == "vendor=v1,other=o2"
    assert [link.flags for link in remote.links] == [0x300, 0x100]
    # twice: the second time from the caches, still the same
    assert _assert_same_as_stock(spans) == data


def test_single_spans_and_small_batches() -> None:
    spans = _sdk_spans()
    _assert_same_as_stock([])
    for span in spans:
        _assert_same_as_stock([span])
    _assert_same_as_stock(spans[:3])


class _Color(enum.IntEnum):
    RED = 1


class _Name(str):
    pass


class _AttributesOverridden(ReadableSpan):
    """A subclass with its own accessor: the encoder must use the public API."""

    @property
    def attributes(self) -> Any:
        return {"overridden": "yes"}


def _manual_spans() -> list[ReadableSpan]:
    """ReadableSpans made directly, with what the SDK would have cleaned away."""
    resource = Resource({"service.name": "manual", "bytes": b"\x00\xff"})
    equal_resource = Resource({"service.name": "manual", "bytes": b"\x00\xff"})
    scope = InstrumentationScope("manual", "1", "https://schema", {"a": 1})
    same_scope_other_attributes = InstrumentationScope("manual", "1", "https://schema", {"b": 2})
    context = SpanContext(0xABC, 0xDEF, is_remote=False)
    weird: dict[Any, Any] = {
        "bytes": b"\x00\x01\xfe",
        "bytes.empty": b"",
        "none": None,
        "mapping": {"inner": 1, "nested": {"deep": ("x", 2)}, 3: "non-str key"},
        "list": ["a", "b"],
        "mixed": (1, "a", None, 2.5, b"z"),
        "nested.seq": (("a", 1), ()),
        "too.big": 2**64,  # skipped, as the stock encoder does
        "too.small": -(2**63) - 1,
        "surrogate": "\udc80",  # not UTF-8 encodable: skipped
        "seq.too.big": (1, 2**70),
        "object": object(),  # unsupported: skipped
        "": "empty key",
        b"bytes-key": "value",
        "int.enum": _Color.RED,
        "str.subclass": _Name("sub"),
        "float.int-valued": 3.0,
        "\udc80 surrogate key": 0.5,  # not UTF-8 encodable: skipped
    }
    return [
        ReadableSpan(
            name="manual",
            context=context,
            parent=SpanContext(0xABC, 0x123, is_remote=True),
            resource=resource,
            attributes=weird,
            events=(
                Event("e", {"k": "v", "none": None}, timestamp=5),
                Event("", None, timestamp=6),
            ),
            links=(Link(_remote_context(), None),),
            kind=SpanKind.PRODUCER,
            status=Status(StatusCode.ERROR, ""),
            start_time=10,
            end_time=20,
            instrumentation_scope=scope,
        ),
        ReadableSpan(
            name="not ended, no scope",
            context=SpanContext(0xABC, 0x1, is_remote=False),
            start_time=11,
        ),
        ReadableSpan(
            name="equal resource, equal scope",
            context=SpanContext(0xABC, 0x2, is_remote=False),
            resource=equal_resource,
            attributes={"list": [1, 2]},
            instrumentation_scope=same_scope_other_attributes,
            start_time=12,
            end_time=13,
        ),
        _AttributesOverridden(
            name="overridden",
            context=SpanContext(0xABC, 0x3, is_remote=False),
            resource=resource,
            attributes={"hidden": "no"},
            instrumentation_scope=scope,
        ),
        ReadableSpan(
            name="no status",
            context=SpanContext(0xABC, 0x4, is_remote=False),
            resource=resource,
            status=None,  # type: ignore[arg-type]
        ),
    ]


def test_unusual_values_encode_as_the_stock_encoder(caplog: pytest.LogCaptureFixture) -> None:
    spans = _manual_spans()
    with caplog.at_level(logging.ERROR):
        data = _assert_same_as_stock(spans)
    request = _parse(data)
    assert len(request.resource_spans) == 2  # equal resources are one group, as stock
    manual = request.resource_spans[0].scope_spans[0].spans[0]
    keys = [kv.key for kv in manual.attributes]
    assert "too.big" not in keys
    assert "surrogate" not in keys
    assert "object" not in keys
    assert "" in keys
    assert "bytes-key" in keys
    # the skipped keys are logged, as the stock encoder logs them
    logged = [r.getMessage() for r in caplog.records if r.name == otlp_encoding.__name__]
    assert any("too.big" in message for message in logged)


def test_the_attribute_cache_stays_bounded() -> None:
    provider = _Provider(Resource.create({"service.name": "bound"}))
    tracer = provider.provider.get_tracer("bound")
    total = otlp_encoding.KEY_VALUE_CACHE_SIZE * 3
    for index in range(total):
        tracer.start_span(
            f"span {index % 7}",
            attributes={"discord.guild.id": index, "discord.user.name": f"user{index}"},
        ).end()
    spans = provider.spans()
    for start in range(0, total, 512):
        batch = spans[start : start + 512]
        _assert_same_as_stock(batch)
        assert len(otlp_encoding._key_values) <= otlp_encoding.KEY_VALUE_CACHE_SIZE
        assert len(otlp_encoding._names) <= otlp_encoding.NAME_CACHE_SIZE
    assert len(otlp_encoding._resources) <= otlp_encoding.IDENTITY_CACHE_SIZE


def test_a_failing_fast_path_falls_back_to_the_stock_encoder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spans = _sdk_spans()
    expected = stock_encode(spans).SerializePartialToString()

    def broken(spans: Sequence[ReadableSpan]) -> bytes:
        raise RuntimeError("fast path broken")

    monkeypatch.setattr(otlp_encoding, "_encode", broken)
    monkeypatch.setattr(otlp_encoding, "_fallback_reported", False)
    with caplog.at_level(logging.DEBUG, logger=otlp_encoding.__name__):
        assert otlp_encoding.encode_spans(spans).SerializePartialToString() == expected
        assert otlp_encoding.encode_spans(spans).SerializePartialToString() == expected
    reports = [r for r in caplog.records if "stock encoder" in r.getMessage()]
    assert len(reports) == 1  # reported once, not per batch


def test_a_span_the_fast_path_declines_is_encoded_by_the_stock_encoder() -> None:
    # A bytes span name is accepted by protobuf for a string field, not by the fast path.
    span = ReadableSpan(
        name=b"bytes name",  # type: ignore[arg-type]
        context=SpanContext(0x1, 0x2, is_remote=False),
        start_time=1,
        end_time=2,
    )
    with pytest.raises(Exception, match="span name"):
        otlp_encoding._encode([span])
    data = _assert_same_as_stock([*_sdk_spans(), span], fast_path=False)
    assert "bytes name" in [span.name for span in _pb_spans(_parse(data))]


def test_install_and_uninstall_restore_the_original() -> None:
    original = trace_exporter.encode_spans
    assert original is stock_encode
    otlp_encoding.install()
    assert trace_exporter.encode_spans is otlp_encoding.encode_spans
    assert otlp_encoding.installed()
    otlp_encoding.install()  # idempotent
    assert trace_exporter.encode_spans is otlp_encoding.encode_spans
    otlp_encoding.uninstall()
    assert trace_exporter.encode_spans is original
    assert not otlp_encoding.installed()
    otlp_encoding.uninstall()  # idempotent
    assert trace_exporter.encode_spans is original


def test_uninstall_leaves_a_later_replacement_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    otlp_encoding.install()

    def someone_else(spans: Sequence[ReadableSpan]) -> Any:
        return stock_encode(spans)

    monkeypatch.setattr(trace_exporter, "encode_spans", someone_else)
    otlp_encoding.uninstall()
    assert trace_exporter.encode_spans is someone_else


def _export(receiver: OtlpReceiver, spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    exporter = OTLPSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces", timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    receiver.wait_for(lambda r: r.trace_requests, what="a trace request")
    return receiver.trace_requests[-1]


def test_exporter_sends_the_fast_encoding(otlp_receiver: OtlpReceiver) -> None:
    otlp_encoding.install()
    spans = _sdk_spans()
    received = _export(otlp_receiver, spans)
    assert received == _parse(stock_encode(spans).SerializePartialToString())
    names = sorted(s.name for s in otlp_receiver.spans())
    assert names == sorted(s.name for s in spans)
    by_name = {s.name: s for s in otlp_receiver.spans()}
    job = by_name["job"]
    assert job.attributes["str.non_ascii"] == EVERY_VALUE_TYPE["str.non_ascii"]
    assert job.attributes["int.min"] == -(2**63)
    assert job.attributes["seq.int"] == list(EVERY_VALUE_TYPE["seq.int"])
    assert job.resource["service.name"] == "worker"


def test_exporter_falls_back_and_still_delivers(
    otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spans: Sequence[ReadableSpan]) -> bytes:
        raise RuntimeError("fast path broken")

    otlp_encoding.install()
    monkeypatch.setattr(otlp_encoding, "_encode", broken)
    spans = _sdk_spans()
    received = _export(otlp_receiver, spans)
    assert received == _parse(stock_encode(spans).SerializePartialToString())


_CHECK_WIRING = """
import discord_otel
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from discord_otel import otlp_encoding, scrub
pipeline = discord_otel.configure()
installed = trace_exporter.encode_spans is otlp_encoding.encode_spans
print(("compiled" if otlp_encoding.speedups else "python") if installed else "stock")
pipeline.shutdown()
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "compiled" if COMPILED else "python"),
        ({"OTEL_PYTHON_DISCORD_COMPILED": "false"}, "python"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "stock"),
        ({"OTEL_TRACES_EXPORTER": "none"}, "stock"),
    ],
)
def test_configurator_installs_it_for_otlp_http_traces(
    otlp_receiver: OtlpReceiver, extra: dict[str, str], expected: str
) -> None:
    env = bot_env({**otlp_receiver.env(), **extra})
    done = subprocess.run(
        [sys.executable, "-c", _CHECK_WIRING],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected, done.stderr


# --- secrets: redacted as the encoder goes -------------------------------------

_INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZmdoaWprbG1ub3A"
_WEBHOOK_URL = f"https://discord.com/api/v10/webhooks/42/{_INTERACTION_TOKEN}"


def _secret_spans(secret: str) -> list[ReadableSpan]:
    """Spans carrying ``secret`` and a webhook token everywhere a value can be."""
    provider = _Provider(Resource.create({"service.name": "bot"}))
    tracer = provider.provider.get_tracer("t")
    linked = tracer.start_span("linked")
    linked.end()
    for _ in range(2):  # the second time from the encoder's caches
        span = tracer.start_span(
            f"POST /webhooks/1/{_INTERACTION_TOKEN}",
            kind=SpanKind.CLIENT,
            attributes={"url.full": _WEBHOOK_URL, "note": f"uses {secret}", "ids": [1, secret]},
            links=[Link(linked.get_span_context(), {"why": f"from {_WEBHOOK_URL}"})],
        )
        span.add_event("log", {"message": f"Bot {secret}"})
        span.set_status(Status(StatusCode.ERROR, f"bad {secret}"))
        span.end()
    return provider.spans()


def _leaks(data: bytes, secret: str) -> list[str]:
    return [s for s in (secret, _INTERACTION_TOKEN) if s.encode() in data]


def test_secrets_are_redacted_everywhere_on_the_fast_path() -> None:
    scrub.register_secret("fast-path-secret-7d2e9a")
    spans = _secret_spans("fast-path-secret-7d2e9a")
    raw = stock_encode(spans).SerializePartialToString()
    assert _leaks(raw, "fast-path-secret-7d2e9a")  # the stock encoder alone would leak
    data = otlp_encoding._encode(spans)
    assert _leaks(data, "fast-path-secret-7d2e9a") == []
    # exactly the stock encoding of the scrubbed spans
    expected = stock_encode([scrub.scrub_span(s) for s in spans]).SerializePartialToString()
    assert _parse(data) == _parse(expected)
    names = {span.name for span in _pb_spans(_parse(data))}
    assert "POST /webhooks/1/REDACTED" in names


def test_a_secret_registered_after_encoding_is_redacted_from_then_on(implementation: str) -> None:
    secret = f"registered-late-secret-3b81f0-{implementation}"  # a new secret each run
    spans = _secret_spans(secret)
    before = otlp_encoding._encode(spans)  # its values now cached as they were
    assert secret.encode() in before
    scrub.register_secret(secret)
    after = otlp_encoding._encode(spans)
    assert _leaks(after, secret) == []
    expected = stock_encode([scrub.scrub_span(s) for s in spans]).SerializePartialToString()
    assert _parse(after) == _parse(expected)


def test_the_fallback_redacts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spans: Sequence[ReadableSpan]) -> bytes:
        raise RuntimeError("fast path broken")

    scrub.register_secret("fallback-secret-5c0d11")
    spans = _secret_spans("fallback-secret-5c0d11")
    monkeypatch.setattr(otlp_encoding, "_encode", broken)
    data = otlp_encoding.encode_spans(spans).SerializePartialToString()
    assert _leaks(data, "fallback-secret-5c0d11") == []
    assert "POST /webhooks/1/REDACTED" in {span.name for span in _pb_spans(_parse(data))}


def test_exporter_sends_no_secret(otlp_receiver: OtlpReceiver) -> None:
    """Through the distro's pipeline wrapper and the real OTLP/HTTP exporter: the
    wrapper leaves scrubbing to the encoder, and nothing leaks on the wire."""
    from discord_otel.pipeline import SafeSpanExporter, SignalCounts, _encodes_scrubbed

    otlp_encoding.install()
    scrub.register_secret("wire-secret-91ab4e")
    spans = _secret_spans("wire-secret-91ab4e")
    inner = OTLPSpanExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/traces", timeout=10)
    exporter = SafeSpanExporter(inner, SignalCounts("spans"))
    assert _encodes_scrubbed(inner)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    otlp_receiver.wait_for(lambda r: r.trace_requests, what="a trace request")
    with otlp_receiver._lock:
        payloads = list(otlp_receiver.raw)
    assert payloads
    assert [leak for p in payloads for leak in _leaks(p, "wire-secret-91ab4e")] == []
    assert "POST /webhooks/1/REDACTED" in {s.name for s in otlp_receiver.spans()}
    otlp_encoding.uninstall()
    assert not _encodes_scrubbed(inner)  # the stock encoder: the wrapper scrubs again


# --- the compiled half --------------------------------------------------------


def _usual_spans() -> list[ReadableSpan]:
    """What the compiled half takes: the instrumentation's own spans, SDK spans and
    plain ReadableSpans, with no links and a status without description."""
    from discord_otel.instrumentation import recording

    provider = _Provider(Resource({"service.name": "usual"}))
    tracer = provider.provider.get_tracer("discord_otel.instrumentation", "0.1")
    ours = []
    for index in range(3):
        gateway = recording.start_span(
            tracer,
            "gateway MESSAGE_CREATE",
            INVALID_SPAN,
            SpanKind.CONSUMER,
            {"discord.gateway.event": "MESSAGE_CREATE", "discord.shard.id": index % 2},
        )
        command = recording.start_span(
            tracer,
            "command ping",
            gateway,
            SpanKind.SERVER,
            {"discord.command.name": "ping", "ok": True, "raw": b"\x00", "took": 0.25},
        )
        recording.add_internal_event(  # a slash command's span carries its ack
            command, "discord.interaction.ack", {"discord.interaction.ack.duration": 0.01 * index}
        )
        ours += [command, gateway]
    with provider.provider.get_tracer("sdk").start_as_current_span("sdk span") as sdk_span:
        sdk_span.set_attribute("db.system.name", "postgresql")
    for span in reversed(ours):
        span.end()
    weird = {
        key: value
        for key, value in _manual_spans()[0].attributes.items()  # type: ignore[union-attr]
    }
    plain = [
        ReadableSpan(
            name=name,
            context=SpanContext(0xABC + index, 0xDEF, is_remote=False, trace_state=state),
            parent=parent,
            attributes=attributes,
            kind=kind,
            status=status,
            start_time=start,
            end_time=end,
        )
        for index, (name, parent, attributes, kind, status, start, end, state) in enumerate(
            [
                ("weird", None, weird, SpanKind.PRODUCER, Status(StatusCode.OK), 1, 2, None),
                ("", _remote_context(), {}, SpanKind.CLIENT, Status(StatusCode.ERROR), 0, 5, None),
                (
                    "remote",
                    _remote_context(),
                    None,
                    SpanKind.SERVER,
                    Status(),
                    None,
                    None,
                    TraceState([("vendor", "v1")]),
                ),
                ("big", None, {"n": 2**62}, SpanKind.INTERNAL, Status(), 2**64 - 1, 2**63, None),
            ]
        )
    ]
    dropping = BoundedAttributes(1, {"a": 1, "b": 2}, immutable=True)  # drops one
    events = (
        Event("e", {"k": "v", "none": None, "weird": weird["mixed"]}, timestamp=5),
        Event("", None, timestamp=6),
        Event("limited", dropping, timestamp=7),
        Event("\u00e9v\u00e9nement", {}, timestamp=0),
    )
    plain.append(ReadableSpan(name="with events", context=SpanContext(7, 8, False), events=events))
    return [*provider.exporter.get_finished_spans(), *plain]


class _Recorder:
    """The compiled half, noting which spans it declined (None)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.declined: list[list[bool]] = []

    def encode_pieces(self, spans: Sequence[Any], *rest: Any) -> list[bytes | None]:
        pieces: list[bytes | None] = self.compiled.encode_pieces(spans, *rest)
        self.declined.append([piece is None for piece in pieces])
        return pieces


def test_the_compiled_half_takes_the_usual_spans_byte_for_byte(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if implementation != "compiled":
        pytest.skip("about the compiled half")
    spans = _usual_spans()
    assert len(spans) == 12
    recorder = _Recorder(COMPILED)
    monkeypatch.setattr(otlp_encoding, "speedups", recorder)
    otlp_encoding.clear_caches()  # span types never met: the first batch is taken too
    compiled = _assert_same_as_stock(spans)
    assert _assert_same_as_stock(spans) == compiled  # and with every cache warm
    assert recorder.declined == [[False] * len(spans)] * 4  # two encodings per call
    monkeypatch.setattr(otlp_encoding, "speedups", None)
    assert otlp_encoding.encode_spans(spans).SerializePartialToString() == compiled


def test_the_compiled_half_leaves_the_rest_to_the_python_code(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if implementation != "compiled":
        pytest.skip("about the compiled half")
    recorder = _Recorder(COMPILED)
    monkeypatch.setattr(otlp_encoding, "speedups", recorder)
    spans = [*_sdk_spans(), *_manual_spans()]
    _assert_same_as_stock(spans)
    _assert_same_as_stock(spans)
    by_name = dict(zip([span.name for span in spans], recorder.declined[-1], strict=True))
    assert by_name["manual"]  # events, links and a status description
    assert not all(by_name.values())


def test_a_secret_registered_mid_batch_hands_the_rest_to_the_python_code(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if implementation != "compiled":
        pytest.skip("about the compiled half")
    secret = "mid-batch-secret-40c2d7"
    spans = _usual_spans()
    spans.append(ReadableSpan(name=f"holds {secret}", context=SpanContext(1, 2, False)))
    otlp_encoding.encode_spans(spans)  # caches filled, span types known
    recorder = _Recorder(COMPILED)
    monkeypatch.setattr(otlp_encoding, "speedups", recorder)
    real_name_field = otlp_encoding._name_field

    def name_field_registering(name: Any) -> bytes:  # while the first span is encoded
        scrub.register_secret(secret)
        return real_name_field(name)

    otlp_encoding._names.clear()
    monkeypatch.setattr(otlp_encoding, "_name_field", name_field_registering)
    data = otlp_encoding.encode_spans(spans).SerializePartialToString()
    assert recorder.declined[-1][0] is False  # the first span was under way
    assert all(recorder.declined[-1][1:])  # the rest went to the Python code
    assert _leaks(data, secret) == []
    expected = stock_encode([scrub.scrub_span(s) for s in spans]).SerializePartialToString()
    assert _parse(data) == _parse(expected)


def test_the_install_built_the_compiled_half() -> None:
    """Where a C compiler is found, installing the package builds the C half (see
    hatch_build.py); the configurator puts it in use unless told not to (above)."""
    if not c_compiler_found():
        pytest.skip("no C compiler here: the Python encoder does the work")
    assert COMPILED is not None
    assert COMPILED.__file__.endswith(sysconfig.get_config_var("EXT_SUFFIX"))
