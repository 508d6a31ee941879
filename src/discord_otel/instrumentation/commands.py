"""Prefix and hybrid commands (``discord.ext.commands``).

- ``BotBase.invoke(ctx)``: one ``command {qualified name}`` SERVER span per
  invocation (looked up per call from ``process_commands``). A message with the
  prefix but no known command is ``command (unknown)`` failing with
  ``CommandNotFound`` -- what the user typed never becomes a name.
- ``Command.dispatch_error(ctx, error)``: where discord.py reports a command's
  failure (checks, cooldowns, missing permissions, converter and callback
  errors, for prefix and hybrid invocations alike): recorded on the current
  command span. ``Bot.invoke`` itself swallows them, so a wrapper around it
  could not see them.

A hybrid command invoked as a slash command goes through the app command tree
(app_commands.py), which opens the one span; its errors still arrive here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import discord
from discord.ext import commands
from opentelemetry.util import types

from discord_otel import semconv
from discord_otel.instrumentation import gateway, handlers, recording, runtime
from discord_otel.instrumentation.handlers import (
    Handler,
    HandlerSpan,
    SampledOutHandlerSpan,
    error_argument_recorder,
)
from discord_otel.instrumentation.metrics import FastHistogram, _Series
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.recording import NON_RECORDING_TYPES, RecordingSpan
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import CURRENT, DiscordSpan, error_type

_series_cache: dict[tuple[Any, ...], _Series] = {}


@functools.lru_cache(maxsize=4096)  # names come from the bot's code: bounded anyway
def command_span_name(name: str) -> str:
    """``command {name}``."""
    return semconv.SPAN_COMMAND.format(name=name)


def command_series(
    histogram: FastHistogram, name: str, kind: str, outcome: str, error: str | None
) -> _Series:
    key = (id(histogram), name, kind, outcome, error)
    series = _series_cache.get(key)
    if series is None:
        attributes: dict[str, Any] = {
            semconv.COMMAND_NAME: name,
            semconv.COMMAND_TYPE: kind,
            semconv.COMMAND_OUTCOME: outcome,
        }
        if error is not None:
            attributes[semconv.ERROR_TYPE] = error
        series = _series_cache[key] = histogram.series(key[1:], attributes)
    return series


def start_command(
    rt: runtime.Runtime,
    name: str,
    kind: str,
    attributes: dict[str, types.AttributeValue],
) -> Handler:
    attributes[semconv.COMMAND_NAME] = name
    attributes[semconv.COMMAND_TYPE] = kind
    active = rt.instruments.command_active
    active[kind] = active.get(kind, 0) + 1
    # the span's name matters only when traced (end_command renames it then anyway)
    return Handler(rt, command_span_name(name) if rt.tracing else name, attributes)


def end_command(handler: Handler, name: str, kind: str, failed: bool) -> None:
    rt = handler.rt
    span = handler.span
    failed = failed or span.error is not None
    outcome = semconv.OUTCOME_ERROR if failed else semconv.OUTCOME_SUCCESS
    error = None
    if span.error is not None:
        error = error_type(span.error)
    elif failed:
        error = semconv.ERROR_TYPE_OTHER
    if handler.traced:
        span_name = command_span_name(name)
        if span.name != span_name:
            span.rename(span_name)
        real = span.materialise()  # Handler.close exports it anyway
        if type(real) is RecordingSpan or (  # else sampled out
            type(real) not in NON_RECORDING_TYPES and real.is_recording()
        ):
            final: dict[str, types.AttributeValue] = {
                semconv.COMMAND_NAME: name,
                semconv.COMMAND_TYPE: kind,
                semconv.COMMAND_OUTCOME: outcome,
            }
            if error is not None and span.error is None:
                final[semconv.ERROR_TYPE] = error
            recording.set_internals(real, final)
    duration = handler.close()
    active = rt.instruments.command_active
    active[kind] = active.get(kind, 1) - 1
    histogram = rt.instruments.command_duration
    series = _series_cache.get((id(histogram), name, kind, outcome, error)) or command_series(
        histogram, name, kind, outcome, error
    )
    histogram.record(series, duration, span.real)


def context_attributes(
    rt: runtime.Runtime, guild: Any, channel: Any, user: Any
) -> dict[str, types.AttributeValue]:
    attributes: dict[str, types.AttributeValue] = {}
    if guild is not None:
        attributes[semconv.GUILD_ID] = str(guild.id)
    if channel is not None:
        attributes[semconv.CHANNEL_ID] = str(channel.id)
    if user is not None and rt.settings.capture_user_id:
        attributes[semconv.USER_ID] = str(user.id)
    return attributes


def _cog_name(command: Any) -> str | None:
    cog = getattr(command, "cog", None)
    if cog is None:
        return None
    name = getattr(cog, "qualified_name", None)
    return name if isinstance(name, str) else None


_qualified_names: dict[Any, str] = {}  # command object -> its qualified name


def _prefix_name(ctx: Any) -> str:
    return _command_name(ctx.command)


def _command_name(command: Any) -> str:
    if command is None:
        return semconv.UNKNOWN_COMMAND
    name = _qualified_names.get(command)
    if name is None:  # discord.py computes it through the parent chain on every read
        name = command.qualified_name
        if not isinstance(name, str):
            return semconv.UNKNOWN_COMMAND
        if len(_qualified_names) < 10_000:  # commands come from code: bounded anyway
            _qualified_names[command] = name
    return name


_original_invoke: Callable[..., Any] = commands.bot.BotBase.invoke


def _invoke(self: Any, ctx: Any, /) -> Any:
    """``BotBase.invoke``: a plain function, not a coroutine, so that a message
    without a command (every message) gets discord.py's own coroutine back."""
    rt = runtime.active
    if rt is None or (ctx.command is None and not ctx.invoked_with):
        return _original_invoke(self, ctx)
    return _invoke_command(rt, self, ctx)


async def _invoke_command(rt: runtime.Runtime, bot: Any, ctx: Any) -> Any:
    begun = _prefix_begun(rt, ctx)
    error: BaseException | None = None
    try:
        return await _original_invoke(bot, ctx)
    except BaseException as exc:
        error = exc
        raise
    finally:
        _prefix_ended(rt, ctx, begun, error)


PrefixBegun = tuple[Handler, str]  # the handler, and the kind it began as


def _prefix_begun(rt: runtime.Runtime, ctx: Any) -> PrefixBegun | None:
    """A prefix invocation begins (as the hook awaits the original): its handler."""
    try:
        kind = semconv.COMMAND_TYPE_PREFIX
        if getattr(ctx.command, "__commands_is_hybrid__", False):
            kind = semconv.COMMAND_TYPE_HYBRID
        handler = start_command(rt, _prefix_name(ctx), kind, {})
    except Exception:
        report("command start")
        return None
    try:
        if handler.traced:  # read only if the span is exported (a sampled-out one never is)
            handler.span.lazy_attributes = partial(_prefix_context, rt, ctx)
            handler.span.resolve = _resolve_prefix(ctx)
        if ctx.command is None:
            handler.span.record_error(commands.CommandNotFound("Command is not found"))
    except Exception:
        report("command start")
    return handler, kind


def _prefix_ended(
    rt: runtime.Runtime, ctx: Any, begun: PrefixBegun | None, error: BaseException | None
) -> None:
    """The invocation is over (``error``: what it raised): its handler ends."""
    if begun is None:
        return
    handler, kind = begun
    try:
        if isinstance(error, Exception) and handler.span.error is None:
            handler.span.record_error(error)
        if handler.traced and rt.settings.capture_command_options:
            handler.span.set_internal(semconv.COMMAND_OPTIONS, _prefix_options(ctx))
        # a group's invoke settles ctx.command on the subcommand: named again
        end_command(handler, _prefix_name(ctx), kind, bool(ctx.command_failed))
    except Exception:
        report("command end")


def _prefix_context(rt: runtime.Runtime, ctx: Any) -> dict[str, types.AttributeValue]:
    attributes = context_attributes(rt, ctx.guild, ctx.channel, ctx.author)
    cog = _cog_name(ctx.command)
    if cog is not None:
        attributes[semconv.COG] = cog
    if rt.settings.capture_message_content and isinstance(ctx.message.content, str):
        attributes[semconv.MESSAGE_CONTENT] = ctx.message.content
    return attributes


def _resolve_prefix(ctx: Any) -> Callable[[DiscordSpan], None]:
    def resolve(span: DiscordSpan) -> None:
        name = _prefix_name(ctx)
        span.rename(command_span_name(name))
        span.set_internal(semconv.COMMAND_NAME, name)

    return resolve


def _prefix_options(ctx: Any) -> str:
    args = [repr(a) for a in list(ctx.args)[2 if ctx.command and ctx.command.cog else 1 :]]
    args += [f"{k}={v!r}" for k, v in dict(ctx.kwargs).items()]
    return ", ".join(args)


_dispatch_error = error_argument_recorder("dispatch_error")


# --- the compiled hook (``_gateway_speedups.CommandHook``) and its callbacks ----------

Description = tuple[str, str, dict[str, types.AttributeValue]]


def description(name: str, kind: str) -> Description:
    """What the compiled hook knows of a command: its name, its type and the
    attributes of its untraced span (shared: spans copy them on write)."""
    return name, kind, {semconv.COMMAND_NAME: name, semconv.COMMAND_TYPE: kind}


def _prefix_description(command: Any) -> Description:
    hybrid = getattr(command, "__commands_is_hybrid__", False)
    kind = semconv.COMMAND_TYPE_HYBRID if hybrid else semconv.COMMAND_TYPE_PREFIX
    return description(_command_name(command), kind)


def _success_series(name: str, kind: str) -> _Series | None:
    rt = runtime.active
    if rt is None:
        return None
    try:
        return command_series(
            rt.instruments.command_duration, name, kind, semconv.OUTCOME_SUCCESS, None
        )
    except Exception:
        report("command end")
        return None


def _untraced_failure(
    span: DiscordSpan, name: str, kind: str, error: BaseException | None, duration: float
) -> None:
    """A failed command's record: ``error`` raised through the hook, or the one
    discord.py's error dispatchers recorded on the span."""
    rt = runtime.active
    if rt is None:
        return
    try:
        if error is not None and span.error is None:
            span.record_error(error)
        kind_of_error = (
            error_type(span.error) if span.error is not None else semconv.ERROR_TYPE_OTHER
        )
        histogram = rt.instruments.command_duration
        series = command_series(histogram, name, kind, semconv.OUTCOME_ERROR, kind_of_error)
        histogram.record(series, duration)
    except Exception:
        report("command end")


def command_hook(
    original: Callable[..., Any],
    traced: Callable[..., Any],
    interaction: bool,
    describe: Callable[[Any], Description],
    traced_begin: Callable[[Any, Any], Any],
    traced_end: Callable[[Any, Any, Any, BaseException | None], None],
    kinds: dict[int, Description] | None = None,
    default_kind: Description | None = None,
) -> Callable[..., Any]:
    """The compiled hook for ``original`` where built, else ``traced``: every
    command awaited by a coroutine written in C -- untraced ones (and those under
    a dropped event) timed there, traced ones begun and ended by the Python
    hook's halves ``traced_begin(rt, subject)`` and ``traced_end(rt, subject,
    begun, error)``."""
    rt = runtime.active
    fast = gateway.compiled(
        rt,
        "compiled command hook",
        lambda built: built.CommandHook(
            original,
            traced,
            runtime,
            rt,
            interaction,
            describe,
            kinds or {},
            default_kind or description(semconv.UNKNOWN_COMMAND, semconv.COMMAND_TYPE_SLASH),
            discord.InteractionType.autocomplete,
            HandlerSpan,
            SampledOutHandlerSpan,
            CURRENT,
            rt.tracer,  # type: ignore[union-attr]
            time.time_ns,
            handlers._untraced,
            handlers._forget_finished_tasks,
            handlers._MAX_UNTRACED,
            rt.instruments.command_active,  # type: ignore[union-attr]
            _success_series,
            _untraced_failure,
            traced_begin,
            traced_end,
            rt.instruments.command_duration.bounds,  # type: ignore[union-attr]
            _Series,
        ),
    )
    return traced if fast is None else fast


def instrument(patcher: Patcher) -> None:
    global _original_invoke
    _original_invoke = commands.bot.BotBase.invoke
    hook = command_hook(
        _original_invoke, _invoke, False, _prefix_description, _prefix_begun, _prefix_ended
    )
    patcher.replace(commands.bot.BotBase, "invoke", hook)
    patcher.wrap(commands.Command, "dispatch_error", _dispatch_error)


def uninstrument() -> None:
    _series_cache.clear()
    _qualified_names.clear()
