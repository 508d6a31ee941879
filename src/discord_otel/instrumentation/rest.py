"""Discord REST calls: ``HTTPClient.request`` and the webhook/interaction adapter.

One CLIENT span per call named ``{METHOD} {route template}`` -- the template
(``Route.path``) never holds an id or a token; the formatted URL is never read.
The span covers the whole call, rate-limit retries included; each attempt's
response is observed through ``json_or_text(response)``, which both request
loops call once per attempt (patched in ``discord.http`` and
``discord.webhook.async_``): a 429 adds a ``discord.ratelimited`` event
(``retry_after``, scope, attempt number) and counts ``discord.rest.ratelimits``;
the rate-limit headers feed ``discord.rest.ratelimit.remaining``.

discord.py's own HTTP session (REST and the gateway websocket) is taken out of
the aiohttp-client instrumentation on its first request: this hook already
makes the route-templated span and ``discord.rest.request.duration`` of every
call, with each retry as a ``discord.ratelimited`` event and
``http.request.resend_count``, and aiohttp-client's span per attempt only
duplicated it, at about 100 us of CPU per request (benchmarks/diagnosis.md).
Sessions the bot creates itself (other APIs, its own webhooks) stay
instrumented; under our span their spans nest as children, with the tokens in
their URLs scrubbed by the distro's URL filter (``discord_otel.distro``).

Where the install compiled it, ``request`` is ``_gateway_speedups.RestHook``:
every call is timed by a coroutine written in C, with no interpreter frame of
ours (it is also the task's open call for ``json_or_text``); a traced call's
span is made and ended in Python (``_traced_begin`` and ``_end``, as the
Python hook makes and ends it). Tests hold both to the same
outcomes, scenario by scenario.

The interaction callback (``POST /interactions/{id}/{token}/callback``) also
gives the interaction's initial response time: gateway receipt -> callback
done, a ``discord.interaction.ack`` event on the handler span and the
``discord.interaction.ack.duration`` histogram.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Callable
from contextvars import Token
from typing import Any
from urllib.parse import urlsplit

import discord.http
import discord.webhook.async_
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from discord_otel import semconv
from discord_otel.instrumentation import gateway, recording, runtime
from discord_otel.instrumentation.handlers import current_handler, task_or_none
from discord_otel.instrumentation.metrics import _Series
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.recording import RecordingSpan
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    CURRENT,
    PROXY_CONTEXT,
    current_parent,
    make_current,
    otel_current,
    reset_current,
)

INTERACTION_CALLBACK = "/interactions/{webhook_id}/{webhook_token}/callback"

_SCOPES = {
    "user": semconv.RATELIMIT_BUCKET,
    "global": semconv.RATELIMIT_GLOBAL,
    "shared": semconv.RATELIMIT_SHARED,
}


class _Call:
    __slots__ = ("attempts", "span", "status", "template")

    def __init__(self, template: str, span: Span | None) -> None:
        self.template = template
        self.span = span
        self.status: int | None = None
        self.attempts = 0


# The REST call each task has open, for json_or_text (a task makes one call at
# a time). A dict by task rather than a ContextVar: a ContextVar's set and reset
# each build a new context mapping (and the set a token), GC-tracked objects per call.
_calls: dict[asyncio.Task[Any], _Call] = {}
_series_cache: dict[tuple[Any, ...], _Series] = {}


@functools.lru_cache(maxsize=4096)  # route templates are bounded
def _span_name(method: str, template: str) -> str:
    return semconv.SPAN_REST.format(method=method, route=template)


@functools.lru_cache(maxsize=64)
def _host(base: str) -> str:
    return urlsplit(base).hostname or ""


def _observe_ratelimit(call: _Call, response: Any, data: Any) -> None:
    """A 429 (its attempt counted by json_or_text): counted by scope, and an
    event on the call's span."""
    rt = runtime.active
    if rt is None:
        return
    headers = response.headers
    retry_after = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(data, dict) and data.get("global"):
        scope = semconv.RATELIMIT_GLOBAL
    else:
        scope = _SCOPES.get(str(headers.get("X-RateLimit-Scope", "user")).lower(), "bucket")
    rt.instruments.ratelimits.add(
        1, {semconv.URL_TEMPLATE: call.template, semconv.RATELIMIT_SCOPE: scope}
    )
    if call.span is not None:
        attributes: dict[str, Any] = {
            semconv.RATELIMIT_SCOPE: scope,
            semconv.HTTP_REQUEST_RESEND_COUNT: call.attempts - 1,
            semconv.HTTP_RESPONSE_STATUS_CODE: call.status,
        }
        if isinstance(retry_after, (int, float)):
            attributes[semconv.RATELIMIT_RETRY_AFTER] = float(retry_after)
        recording.add_internal_event(call.span, semconv.EVENT_RATELIMITED, attributes)


def _json_or_text_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    """``json_or_text(response)``, which both request loops await once per
    attempt: observed before the body is read, and the original's own coroutine
    returned (no coroutine of ours per attempt). Only a 429 waits for the body,
    which holds ``retry_after`` and ``global``."""

    def json_or_text(response: Any) -> Any:
        try:
            call = _calls.get(task_or_none()) if _calls else None  # type: ignore[arg-type]
            if call is not None:  # the attempt's answer: counted, its status and headroom kept
                call.attempts += 1
                status = call.status = int(response.status)
                remaining = response.headers.get("X-Ratelimit-Remaining")
                if remaining is not None:  # parsed when the gauge is read, not per response
                    rt = runtime.active
                    if rt is not None:
                        by_route = rt.instruments.ratelimit_remaining
                        if call.template in by_route or len(by_route) < 1000:
                            by_route[call.template] = remaining
                if status == 429:
                    return _rate_limited(original, call, response)
        except Exception:
            report("rest attempt")
        return original(response)

    functools.update_wrapper(json_or_text, original)
    return json_or_text


async def _rate_limited(original: Callable[..., Any], call: _Call, response: Any) -> Any:
    data = await original(response)
    try:
        _observe_ratelimit(call, response, data)
    except Exception:
        report("rest attempt")
    return data


def _message_id(result: Any) -> int | None:
    """The id of the message a REST call returned, if it has components (only
    those can lead to a component interaction to link back)."""
    if type(result) is not dict:
        return None
    resource = result.get("resource")
    message = resource.get("message") if type(resource) is dict else None
    if message is None and "channel_id" in result and "author" in result:
        message = result
    if type(message) is dict and message.get("components") and message.get("id") is not None:
        try:
            return int(message["id"])
        except (TypeError, ValueError):
            return None
    return None


# discord.py HTTP sessions already taken out of aiohttp-client's instrumentation
_own_sessions: weakref.WeakSet[Any] = weakref.WeakSet()
_last_session: Callable[[], Any] = type(None)  # a weakref to the last session seen


def _take_session_out_of_aiohttp_instrumentation(session: Any) -> None:
    """Called for an HTTPClient's session unless it was the last one seen (the
    usual case: one client, one session)."""
    global _last_session
    _last_session = weakref.ref(session)
    if session in _own_sessions:
        return
    _own_sessions.add(session)
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    except ImportError:  # aiohttp-client instrumentation not installed: nothing to undo
        return
    AioHttpClientInstrumentor.uninstrument_session(session)


def _request_hook(original: Callable[..., Any], own_session: bool) -> Callable[..., Any]:
    """``HTTPClient.request`` / ``AsyncWebhookAdapter.request`` (``original``),
    timed and, when tracing, under a CLIENT span. A plain method in place of the
    original rather than a wrapt wrapper: no wrapper object is bound per call on
    this per-command path. ``own_session``: the HTTPClient, whose aiohttp
    session is discord.py's own."""

    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        rt = runtime.active
        route = args[0] if args else kwargs.get("route")
        if rt is None or route is None:
            return await original(self, *args, **kwargs)
        start = time.perf_counter()
        call = task = outer = token = None
        try:
            if own_session:
                session = getattr(self, "_HTTPClient__session", None)
                if session is not None and _last_session() is not session:
                    _take_session_out_of_aiohttp_instrumentation(session)
            template = str(route.path)
            span = None
            if rt.tracing:
                span, token = _begin(rt, route, template)
            call = _Call(template, span)
            task = task_or_none()
            if task is not None:
                outer = _calls.get(task)  # only if one request hook calls the other
                _calls[task] = call
        except Exception:
            report("rest start")
        error: BaseException | None = None
        result: Any = None
        try:
            result = await original(self, *args, **kwargs)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            if task is not None:
                if outer is None:
                    _calls.pop(task, None)
                else:
                    _calls[task] = outer
            if call is not None:
                _end(rt, route, call, error, result, time.perf_counter() - start, token)

    functools.update_wrapper(request, original)  # also sets __wrapped__
    return request


def _begin(rt: runtime.Runtime, route: Any, template: str) -> tuple[Span | None, Token[Any] | None]:
    """When tracing: the call's span (None: dropped), made current (the token:
    of ``spans.CURRENT`` when the proxy is in the context, else of the
    OpenTelemetry context)."""
    parent, discord_span, proxied = current_parent()
    if parent is None:  # under a dropped event: no span, nothing to look up
        return None, None
    span = recording.dropped_child(rt.tracer, parent)
    if span is not None:  # dropped: nothing to describe, and the current context is as unsampled
        return None, None
    method = str(route.method)
    span = recording.start_span(
        rt.tracer,
        _span_name(method, template),
        parent,
        SpanKind.CLIENT,
        {
            semconv.HTTP_REQUEST_METHOD: method,
            semconv.URL_TEMPLATE: template,
            semconv.SERVER_ADDRESS: _host(str(getattr(route, "BASE", ""))),
        },
    )
    return span, make_current(span, rt.tracer, discord_span, proxied)


def _finish(
    rt: runtime.Runtime,
    route: Any,
    call: _Call,
    error: BaseException | None,
    result: Any,
    duration: float,
) -> None:
    method = str(route.method)
    span = call.span
    status = call.status
    if status is None:
        status = getattr(getattr(error, "response", None), "status", None)
    error_kind: str | None = None
    if status is not None and status >= 400:
        error_kind = str(status)
    elif error is not None:
        error_kind = type(error).__name__
    if span is not None:
        if status is not None:
            recording.set_internal(span, semconv.HTTP_RESPONSE_STATUS_CODE, status)
        if call.attempts > 1:
            recording.set_internal(span, semconv.HTTP_REQUEST_RESEND_COUNT, call.attempts - 1)
        if error_kind is not None:
            recording.set_internal(span, semconv.ERROR_TYPE, error_kind)
            span.set_status(Status(StatusCode.ERROR, error_kind))
        span.end()
    series = _series(rt, method, call.template, status, error_kind)
    rt.instruments.rest_duration.record(series, duration, span)
    if error is not None:
        return
    if call.template == INTERACTION_CALLBACK:
        _acknowledged(rt, route)
    # the message's components link to its command's span: only worth it when exported
    if (
        rt.tracing
        and span is not None
        and (type(span) is RecordingSpan or span.get_span_context().trace_flags.sampled)
    ):
        message_id = _message_id(result)
        if message_id is not None:
            handler = current_handler()
            if handler is not None:
                rt.message_spans.put(message_id, handler.get_span_context())


def _series(
    rt: runtime.Runtime, method: str, template: str, status: int | None, error_kind: str | None
) -> _Series:
    """The ``discord.rest.request.duration`` series of a call's outcome."""
    key = (method, template, status, error_kind)
    series = _series_cache.get(key)
    if series is None:
        attributes: dict[str, Any] = {
            semconv.HTTP_REQUEST_METHOD: method,
            semconv.URL_TEMPLATE: template,
        }
        if status is not None:
            attributes[semconv.HTTP_RESPONSE_STATUS_CODE] = status
        if error_kind is not None:
            attributes[semconv.ERROR_TYPE] = error_kind
        series = rt.instruments.rest_duration.series(key, attributes)
        if len(_series_cache) < 5000:
            _series_cache[key] = series
    return series


def _acknowledged(rt: runtime.Runtime, route: Any) -> None:
    try:
        interaction_id = int(route.webhook_id)
    except (TypeError, ValueError):
        return
    found = rt.interactions.pop(interaction_id, None)
    if found is None:
        return
    received_ns, kind = found
    seconds = max(0.0, (time.time_ns() - received_ns) / 1e9)
    histogram = rt.instruments.ack_duration
    series = histogram.known("ack", kind) or histogram.series(
        ("ack", kind), {semconv.INTERACTION_TYPE: kind}
    )
    handler = current_handler() if rt.tracing else None  # the span only gets an event
    real = handler.real if handler is not None else None
    histogram.record(series, seconds, real)
    if real is not None:
        recording.add_internal_event(
            real,
            semconv.EVENT_INTERACTION_ACK,
            {semconv.INTERACTION_ACK_DURATION: seconds, semconv.INTERACTION_TYPE: kind},
        )


# --- the compiled hook's callbacks (each reports its own errors) -----------------


def _traced_begin(
    rt: runtime.Runtime, route: Any, template: str
) -> tuple[Span | None, Token[Any] | None]:
    """The compiled hook's traced call begins: its span and token (``_begin``),
    or none when that failed (the call goes on untraced)."""
    try:
        return _begin(rt, route, template)
    except Exception:
        report("rest start")
        return None, None


def _end(
    rt: runtime.Runtime,
    route: Any,
    call: _Call,
    error: BaseException | None,
    result: Any,
    duration: float,
    token: Token[Any] | None,
) -> None:
    """A call is over (either hook's): recorded (``_finish``), then what
    ``_begin`` made current is no longer (``token``, when traced)."""
    try:
        _finish(rt, route, call, error, result, duration)
    except Exception:
        report("rest end")
    if token is not None:
        try:
            reset_current(token)
        except Exception:
            report("rest end")


def _success_series(method: str, template: str, status: int) -> _Series | None:
    rt = runtime.active
    if rt is None:
        return None
    try:
        return _series(rt, method, template, status, None)
    except Exception:
        report("rest end")
        return None


def _finished(route: Any, call: _Call, error: BaseException | None, duration: float) -> None:
    rt = runtime.active
    if rt is not None:
        try:
            _finish(rt, route, call, error, None, duration)
        except Exception:
            report("rest end")


def _route_acknowledged(route: Any) -> None:
    rt = runtime.active
    if rt is not None:
        try:
            _acknowledged(rt, route)
        except Exception:
            report("rest end")


def _session_seen(session: Any) -> None:
    try:
        _take_session_out_of_aiohttp_instrumentation(session)
    except Exception:
        report("rest start")


def _chosen_request_hook(original: Callable[..., Any], own_session: bool) -> Callable[..., Any]:
    """The compiled hook where built (untraced calls, and those under a dropped
    event, are timed by a coroutine written in C; traced ones go to the Python
    hook), else the Python hook."""
    hook = _request_hook(original, own_session)
    rt = runtime.active
    fast = gateway.compiled(
        rt,
        "compiled rest hook",
        lambda built: built.RestHook(
            original,
            hook,
            runtime,
            rt,
            _calls,
            _success_series,
            _finished,
            _route_acknowledged,
            _session_seen if own_session else None,
            INTERACTION_CALLBACK,
            "_HTTPClient__session",
            CURRENT,
            otel_current,
            PROXY_CONTEXT,
            _traced_begin,
            _end,
            rt.instruments.rest_duration.bounds,  # type: ignore[union-attr]
            _Series,
        ),
    )
    return hook if fast is None else functools.update_wrapper(fast, original)


def _chosen_attempt_observer(original: Callable[..., Any]) -> Callable[..., Any]:
    """The compiled ``json_or_text`` where built (it hands a traced call's attempt
    to the Python one), else the Python one."""
    observer = _json_or_text_wrapper(original)
    rt = runtime.active
    fast = gateway.compiled(
        rt,
        "compiled rest attempt observer",
        lambda built: built.AttemptObserver(
            original,
            observer,
            _calls,
            rt.instruments.ratelimit_remaining,  # type: ignore[union-attr]
            _rate_limited,
        ),
    )
    return observer if fast is None else functools.update_wrapper(fast, original)


def instrument(patcher: Patcher) -> None:
    http = discord.http.HTTPClient
    patcher.replace(http, "request", _chosen_request_hook(http.request, True))
    adapter = discord.webhook.async_.AsyncWebhookAdapter
    patcher.replace(adapter, "request", _chosen_request_hook(adapter.request, False))
    for module in (discord.http, discord.webhook.async_):
        patcher.replace(module, "json_or_text", _chosen_attempt_observer(module.json_or_text))


def uninstrument() -> None:
    _series_cache.clear()
