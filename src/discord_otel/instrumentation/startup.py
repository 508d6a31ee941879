"""The ``startup`` trace: login (``setup_hook``, extension and cog loads) and the gateway connect.

``startup`` starts when ``Client.login`` is called and is current while it runs,
so ``load_extension`` / ``add_cog`` spans (and the user's own) nest under it.
``gateway connect`` starts with the first ``DiscordWebSocket.from_client`` of
each shard and ends when that shard's READY is parsed; ``startup`` ends with
the last of them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import discord
from discord.ext import commands
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from discord_otel import semconv
from discord_otel.instrumentation import clients, runtime
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import mark_error


class _Startup:
    def __init__(self, span: Span) -> None:
        self.span = span
        self.connects: dict[int, Span] = {}
        self.logged_in = False
        self.ended = False

    def maybe_end(self) -> None:
        if self.logged_in and not self.connects and not self.ended:
            self.ended = True
            self.span.end()


_startups: weakref.WeakKeyDictionary[Any, _Startup] = weakref.WeakKeyDictionary()


def _register_token(token: Any) -> None:
    if not isinstance(token, str):
        return
    try:
        from discord_otel import scrub

        scrub.register_secret(token.strip())
    except Exception:
        report("register token")


async def _login(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is None:
        return await wrapped(*args, **kwargs)
    _register_token(args[0] if args else kwargs.get("token"))
    record: _Startup | None = None
    token = None
    try:
        clients.track(instance)
        if rt.refresh_tracing():
            span = rt.tracer.start_span(semconv.SPAN_STARTUP, context=otel_context.Context())
            record = _Startup(span)
            _startups[instance] = record
            token = otel_context.attach(trace.set_span_in_context(span))
    except Exception:
        report("startup")
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        if record is not None:
            mark_error(record.span, exc)
            record.ended = True
            record.span.end()
        raise
    finally:
        if token is not None:
            otel_context.detach(token)
        if record is not None:
            record.logged_in = True


def gateway_connecting(rt: runtime.Runtime, client: Any, shard: int) -> Span | None:
    """Open the shard's ``gateway connect`` span under ``startup``; returned so the
    caller can make it current around the websocket handshake."""
    record = _startups.get(client)
    if record is None or record.ended:
        return None
    parent = trace.set_span_in_context(record.span, otel_context.Context())
    span = rt.tracer.start_span(
        semconv.SPAN_GATEWAY_CONNECT, context=parent, attributes={semconv.SHARD_ID: shard}
    )
    old = record.connects.pop(shard, None)
    if old is not None:
        old.end()
    record.connects[shard] = span
    return span


def gateway_ready(client: Any, shard: int) -> None:
    record = _startups.get(client)
    if record is None:
        return
    span = record.connects.pop(shard, None)
    if span is not None:
        span.end()
    record.maybe_end()


def gateway_failed(client: Any, shard: int, exc: BaseException) -> None:
    record = _startups.get(client)
    if record is None:
        return
    span = record.connects.pop(shard, None)
    if span is not None:
        mark_error(span, exc)
        span.end()
    record.maybe_end()


def client_closed(client: Any) -> None:
    record = _startups.pop(client, None)
    if record is None:
        return
    for span in record.connects.values():
        span.end()
    record.connects.clear()
    if not record.ended:
        record.ended = True
        record.span.end()


def _named_span(template: str, attribute: str) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        rt = runtime.active
        if rt is None or not rt.tracing:
            return await wrapped(*args, **kwargs)
        span = None
        token = None
        try:
            target = args[0] if args else kwargs.get("name") or kwargs.get("cog")
            if isinstance(target, str):
                name = target
            else:
                name = getattr(target, "__cog_name__", None) or type(target).__name__
            span = rt.tracer.start_span(template.format(name=name), attributes={attribute: name})
            token = otel_context.attach(trace.set_span_in_context(span))
        except Exception:
            report("startup child")
        try:
            return await wrapped(*args, **kwargs)
        except BaseException as exc:
            if span is not None:
                mark_error(span, exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                span.end()

    return wrapper


def instrument(patcher: Patcher) -> None:
    patcher.wrap(discord.Client, "login", _login)
    patcher.wrap(
        commands.bot.BotBase,
        "load_extension",
        _named_span(semconv.SPAN_EXTENSION_LOAD, semconv.EXTENSION_NAME),
    )
    patcher.wrap(commands.bot.BotBase, "add_cog", _named_span(semconv.SPAN_COG_LOAD, semconv.COG))
