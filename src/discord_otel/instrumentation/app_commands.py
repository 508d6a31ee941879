"""Application commands: slash (with groups), user and message context menus,
hybrid commands invoked as slash commands, and autocomplete.

- ``CommandTree._call(interaction)`` (looked up per call by the tree's invoker
  task): one ``command {qualified name}`` span, or ``autocomplete {command}``.
  What ``_call`` raises (``CommandNotFound``, failed checks of a context menu
  ...) is seen here and passed on unchanged to the tree's ``_dispatch_error``.
- ``app_commands.Command._invoke_error_handlers``: where the tree reports a
  slash command's failure (``CheckFailure``, ``CommandOnCooldown``,
  ``MissingPermissions``, ``CommandInvokeError`` ...).
- ``ContextMenu._invoke``: a context menu's failure, raised through it.
- Autocomplete failures are only logged by discord.py: a logging filter on
  ``discord.app_commands.tree`` records them.

The command is resolved by the tree inside ``_call``, so the span's name and
attributes are settled when it is materialised (at the first REST call) or at
the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import discord
from discord import app_commands
from opentelemetry.util import types

from discord_otel import semconv
from discord_otel.instrumentation import runtime
from discord_otel.instrumentation.commands import (
    Description,
    command_hook,
    context_attributes,
    description,
    end_command,
    start_command,
)
from discord_otel.instrumentation.handlers import (
    ErrorLogFilter,
    Handler,
    error_argument_recorder,
    record_error_on_handler,
)
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import DiscordSpan

_filter = ErrorLogFilter()
_TREE_LOGGER = "discord.app_commands.tree"


def resolved_command(interaction: Any) -> Any:
    return getattr(interaction, "_cs_command", None)


_descriptions: dict[Any, tuple[str, str, str | None]] = {}  # command object -> describe()


def describe(command: Any) -> tuple[str, str, str | None]:
    """(qualified name, command type, cog) of a resolved tree command."""
    if command is None:
        return semconv.UNKNOWN_COMMAND, semconv.COMMAND_TYPE_SLASH, None
    found = _descriptions.get(command)
    if found is None:  # read through several properties: once per command object
        found = _describe(command)
        if len(_descriptions) < 10_000:  # commands come from code: bounded anyway
            _descriptions[command] = found
    return found


def _describe(command: Any) -> tuple[str, str, str | None]:
    if isinstance(command, app_commands.ContextMenu):
        kind = (
            semconv.COMMAND_TYPE_USER
            if command.type is discord.AppCommandType.user
            else semconv.COMMAND_TYPE_MESSAGE
        )
        return command.qualified_name, kind, None
    kind = semconv.COMMAND_TYPE_SLASH
    cog = None
    wrapped = getattr(command, "wrapped", None)
    if wrapped is not None and getattr(wrapped, "__commands_is_hybrid__", False):
        kind = semconv.COMMAND_TYPE_HYBRID
        cog_obj = getattr(wrapped, "cog", None)
    else:
        cog_obj = getattr(command, "binding", None)
    if cog_obj is not None:
        cog_name = getattr(cog_obj, "qualified_name", None) or getattr(
            cog_obj, "__cog_name__", None
        )
        cog = cog_name if isinstance(cog_name, str) else None
    name = command.qualified_name
    return (name if isinstance(name, str) else semconv.UNKNOWN_COMMAND), kind, cog


def _options(interaction: Any) -> str:
    data = interaction.data or {}
    parts: list[str] = []

    def walk(options: Any) -> None:
        for option in options or []:
            if option.get("type") in (1, 2):
                walk(option.get("options"))
            elif "value" in option:
                parts.append(f"{option.get('name')}={option.get('value')!r}")

    walk(data.get("options"))
    return ", ".join(parts)


def _interaction_context(rt: runtime.Runtime, interaction: Any) -> dict[str, types.AttributeValue]:
    attributes = context_attributes(rt, interaction.guild, interaction.channel, interaction.user)
    if rt.settings.capture_command_options:
        attributes[semconv.COMMAND_OPTIONS] = _options(interaction)
    return attributes


def _resolver(interaction: Any, autocomplete: bool) -> Callable[[DiscordSpan], None]:
    def resolve(span: DiscordSpan) -> None:
        name, kind, cog = describe(resolved_command(interaction))
        template = semconv.SPAN_AUTOCOMPLETE if autocomplete else semconv.SPAN_COMMAND
        span.rename(template.format(name=name))
        span.set_internal(semconv.COMMAND_NAME, name)
        if not autocomplete:
            span.set_internal(semconv.COMMAND_TYPE, kind)
        if cog is not None:
            span.set_internal(semconv.COG, cog)

    return resolve


_original_call: Callable[..., Any] = app_commands.CommandTree._call


async def _call(self: Any, *args: Any, **kwargs: Any) -> Any:
    """``CommandTree._call``: a plain method in place of the original (no wrapper
    object bound per interaction), which it calls as ``_original_call``."""
    rt = runtime.active
    interaction = args[0] if args else kwargs.get("interaction")
    if rt is None or interaction is None:
        return await _original_call(self, *args, **kwargs)
    begun = _call_begun(rt, interaction)
    error: BaseException | None = None
    try:
        return await _original_call(self, *args, **kwargs)
    except BaseException as exc:
        error = exc
        raise
    finally:
        _call_ended(rt, interaction, begun, error)


CallBegun = tuple[Handler, str, bool]  # the handler, the kind it began as, autocomplete


def _call_begun(rt: runtime.Runtime, interaction: Any) -> CallBegun | None:
    """An interaction's command begins (as the hook awaits the original): its handler."""
    try:
        autocomplete = interaction.type is discord.InteractionType.autocomplete
        kind = semconv.COMMAND_TYPE_SLASH
        attributes: dict[str, types.AttributeValue] = {}
        if autocomplete:
            attributes[semconv.COMMAND_NAME] = semconv.UNKNOWN_COMMAND
            handler = Handler(
                rt, semconv.SPAN_AUTOCOMPLETE.format(name=semconv.UNKNOWN_COMMAND), attributes
            )
        else:
            data = interaction.data  # the type as sent, until the tree resolves the command
            command_type = data.get("type", 1) if data else 1
            if command_type == 2:
                kind = semconv.COMMAND_TYPE_USER
            elif command_type == 3:
                kind = semconv.COMMAND_TYPE_MESSAGE
            handler = start_command(rt, semconv.UNKNOWN_COMMAND, kind, attributes)
    except Exception:
        report("app command start")
        return None
    try:
        # span attributes and name resolution: only if the span is exported (neither
        # in metrics-only mode nor under a sampled-out event)
        if handler.traced:
            handler.span.lazy_attributes = partial(_interaction_context, rt, interaction)
            handler.span.resolve = _resolver(interaction, autocomplete)
    except Exception:
        report("app command start")
    return handler, kind, autocomplete


def _call_ended(
    rt: runtime.Runtime, interaction: Any, begun: CallBegun | None, error: BaseException | None
) -> None:
    """The interaction's command is over (``error``: what it raised): its handler ends."""
    if begun is None:
        return
    handler, kind, autocomplete = begun
    try:
        span = handler.span
        if isinstance(error, Exception) and span.error is None:
            span.record_error(error)
        if autocomplete:
            if span.resolve is not None:
                resolve = span.resolve
                span.resolve = None
                resolve(span)
            handler.close()
            return
        command = getattr(interaction, "_cs_command", None)  # resolved_command()
        name, final_kind, cog = _descriptions.get(command) or describe(command)
        if span.resolve is not None:  # never materialised: end_command names it
            span.resolve = None
            if cog is not None:
                span.set_internal(semconv.COG, cog)
        if final_kind != kind:  # keep command.active balanced
            active = rt.instruments.command_active
            active[kind] = active.get(kind, 1) - 1
            active[final_kind] = active.get(final_kind, 0) + 1
        end_command(
            handler,
            name,
            final_kind,
            bool(getattr(interaction, "command_failed", False)),
        )
    except Exception:
        report("app command end")


async def _record_and_reraise(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    except Exception as exc:
        if runtime.active is not None:
            try:
                record_error_on_handler(exc)
            except Exception:
                report("context menu error")
        raise


_invoke_error_handlers = error_argument_recorder("app command error")


def _tree_description(command: Any) -> Description:
    name, kind, _cog = describe(command)
    return description(name, kind)


# how an interaction's command begins, by the type its data gives (slash otherwise)
_BEGUN = {
    2: description(semconv.UNKNOWN_COMMAND, semconv.COMMAND_TYPE_USER),
    3: description(semconv.UNKNOWN_COMMAND, semconv.COMMAND_TYPE_MESSAGE),
}


def instrument(patcher: Patcher) -> None:
    global _original_call
    _original_call = app_commands.CommandTree._call
    hook = command_hook(
        _original_call, _call, True, _tree_description, _call_begun, _call_ended, _BEGUN
    )
    patcher.replace(app_commands.CommandTree, "_call", hook)
    patcher.wrap(app_commands.Command, "_invoke_error_handlers", _invoke_error_handlers)
    patcher.wrap(app_commands.ContextMenu, "_invoke", _record_and_reraise)
    logging.getLogger(_TREE_LOGGER).addFilter(_filter)


def uninstrument() -> None:
    logging.getLogger(_TREE_LOGGER).removeFilter(_filter)
    _descriptions.clear()
