"""Views (buttons, selects), dynamic items and modals.

- ``BaseView._scheduled_task(item, interaction)``: ``component {View.callback}``;
- ``Modal._scheduled_task(interaction, ...)``: ``modal {ModalClass}``;
- ``ViewStore.schedule_dynamic_item_call(...)``: ``component {template}``.

Names are bounded (classes, callbacks, templates written by the developer);
the raw ``custom_id`` is only a span attribute, never a name or a metric
attribute. A component or modal whose message was sent while a command ran
links to that command's span (message id -> span context, a bounded LRU filled
by rest.py).

Failures: a view or modal reports them to its ``on_error`` (often the bot's
override), so the first dispatch puts an :class:`ErrorRecorder` in front of it
on the instance; dynamic items only log them (logging filter).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from discord import ui

from discord_otel import semconv
from discord_otel.instrumentation import runtime
from discord_otel.instrumentation.commands import context_attributes
from discord_otel.instrumentation.handlers import ErrorLogFilter, ErrorRecorder, Handler
from discord_otel.instrumentation.metrics import _Series
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import error_type, link_to

_filter = ErrorLogFilter()
_VIEW_LOGGER = "discord.ui.view"
_shadowed: weakref.WeakSet[Any] = weakref.WeakSet()
_series_cache: dict[tuple[Any, ...], _Series] = {}


def _shadow_on_error(view: Any) -> None:
    if view in _shadowed:
        return
    had = "on_error" in vars(view)
    if had and isinstance(vars(view)["on_error"], ErrorRecorder):
        return
    view.on_error = ErrorRecorder(view.on_error, had)
    _shadowed.add(view)


def _unshadow_all() -> None:
    for view in list(_shadowed):
        try:
            recorder = vars(view).get("on_error")
            if isinstance(recorder, ErrorRecorder):
                if recorder.had_instance_attribute:
                    view.on_error = recorder.original
                else:
                    del view.on_error
        except Exception:
            report("component restore")
    _shadowed.clear()


def item_name(view: Any, item: Any) -> str:
    callback = getattr(item, "callback", None)
    func = getattr(callback, "callback", None) or callback
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or name == "callback":
        name = type(item).__name__
    return f"{type(view).__name__}.{name}"


def _component_type(item: Any) -> str:
    kind = getattr(item, "type", None)
    name = getattr(kind, "name", None)
    return name if isinstance(name, str) else "unknown"


def _links(rt: runtime.Runtime, interaction: Any) -> Any:
    message = getattr(interaction, "message", None)
    if message is None:
        return ()
    return link_to(rt.message_spans.get(message.id))


def _start(
    rt: runtime.Runtime,
    template: str,
    name: str,
    kind: str,
    custom_id: Any,
    interaction: Any,
) -> Handler:
    attributes = context_attributes(rt, interaction.guild, interaction.channel, interaction.user)
    attributes[semconv.COMPONENT_NAME] = name
    attributes[semconv.COMPONENT_TYPE] = kind
    if isinstance(custom_id, str):
        attributes[semconv.COMPONENT_CUSTOM_ID] = custom_id
    links = _links(rt, interaction) if rt.tracing else ()
    return Handler(rt, template.format(name=name), attributes, links)


def _end(handler: Handler, name: str, kind: str) -> None:
    span = handler.span
    error = error_type(span.error) if span.error is not None else None
    duration = handler.close()
    key = (name, kind, error)
    series = _series_cache.get(key)
    histogram = handler.rt.instruments.component_duration
    if series is None:
        attributes = {semconv.COMPONENT_NAME: name, semconv.COMPONENT_TYPE: kind}
        if error is not None:
            attributes[semconv.ERROR_TYPE] = error
        series = _series_cache[key] = histogram.series(key, attributes)
    histogram.record(series, duration, span.real)


async def _run(
    rt: runtime.Runtime,
    start: Callable[[], tuple[Handler, str, str]],
    call: Callable[[], Any],
) -> Any:
    handler = None
    try:
        handler, name, kind = start()
    except Exception:
        report("component start")
    try:
        return await call()
    except Exception as exc:
        if handler is not None and handler.span.error is None:
            handler.span.record_error(exc)
        raise
    finally:
        if handler is not None:
            try:
                _end(handler, name, kind)
            except Exception:
                report("component end")


async def _view_task(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is None or len(args) < 2:
        return await wrapped(*args, **kwargs)
    item, interaction = args[0], args[1]

    def start() -> tuple[Handler, str, str]:
        _shadow_on_error(instance)
        name, kind = item_name(instance, item), _component_type(item)
        custom_id = getattr(item, "custom_id", None)
        return _start(rt, semconv.SPAN_COMPONENT, name, kind, custom_id, interaction), name, kind

    return await _run(rt, start, lambda: wrapped(*args, **kwargs))


async def _modal_task(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is None or not args:
        return await wrapped(*args, **kwargs)
    interaction = args[0]

    def start() -> tuple[Handler, str, str]:
        _shadow_on_error(instance)
        name, kind = type(instance).__name__, semconv.COMPONENT_TYPE_MODAL
        custom_id = getattr(instance, "custom_id", None)
        return _start(rt, semconv.SPAN_MODAL, name, kind, custom_id, interaction), name, kind

    return await _run(rt, start, lambda: wrapped(*args, **kwargs))


async def _dynamic_item(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is None or len(args) < 4:
        return await wrapped(*args, **kwargs)
    component_type, factory, interaction, custom_id = args[0], args[1], args[2], args[3]

    def start() -> tuple[Handler, str, str]:
        pattern = getattr(factory, "__discord_ui_compiled_template__", None)
        name = getattr(pattern, "pattern", None) or factory.__name__
        try:
            from discord import ComponentType

            kind = ComponentType(component_type).name
        except Exception:
            kind = "unknown"
        return _start(rt, semconv.SPAN_COMPONENT, name, kind, custom_id, interaction), name, kind

    return await _run(rt, start, lambda: wrapped(*args, **kwargs))


def instrument(patcher: Patcher) -> None:
    patcher.wrap(ui.view.BaseView, "_scheduled_task", _view_task)
    patcher.wrap(ui.Modal, "_scheduled_task", _modal_task)
    patcher.wrap(ui.view.ViewStore, "schedule_dynamic_item_call", _dynamic_item)
    logging.getLogger(_VIEW_LOGGER).addFilter(_filter)


def uninstrument() -> None:
    logging.getLogger(_VIEW_LOGGER).removeFilter(_filter)
    _unshadow_all()
    _series_cache.clear()
