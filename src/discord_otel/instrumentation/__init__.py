"""OpenTelemetry instrumentation for discord.py: ``DiscordInstrumentor``.

Turns what a bot does into one connected trace per gateway event -- gateway
dispatch -> listener -> command / component / modal / autocomplete -> REST,
database and the user's own spans -- plus the ``discord.*`` metrics, following
the project's telemetry contract (names in :mod:`discord_otel.semconv`).

Modules, one concern each:

- ``gateway``: per-websocket wrapped parsers (event counting, deferred
  ``gateway {EVENT}`` spans), connects and reconnects;
- ``listeners``: listener runs; ``commands``: prefix/hybrid commands;
  ``app_commands``: the app command tree (slash, context menus, autocomplete);
  ``components``: views, dynamic items, modals; ``rest``: REST calls;
  ``tasks``: ``ext.tasks`` loops; ``startup``: login, extensions, cogs, first connect;
- ``spans``: the deferred span design; ``metrics``: the instruments;
  ``clients``: tracked clients and start callbacks; ``safety``: the guard.

Usage::

    from discord_otel import DiscordInstrumentor
    DiscordInstrumentor().instrument(tracer_provider=..., meter_provider=...)

or ``opentelemetry-instrument python bot.py`` (entry point ``discord``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import get_meter
from opentelemetry.trace import get_tracer

from discord_otel import semconv
from discord_otel.config import DiscordOtelSettings
from discord_otel.instrumentation import (
    app_commands,
    clients,
    commands,
    components,
    gateway,
    listeners,
    rest,
    runtime,
    startup,
    tasks,
)
from discord_otel.instrumentation.clients import add_start_callback
from discord_otel.instrumentation.metrics import Instruments
from discord_otel.instrumentation.package import _instruments
from discord_otel.instrumentation.patching import Patcher
from discord_otel.version import __version__

__all__ = ["DiscordInstrumentor", "add_start_callback"]

_MODULES = (gateway, startup, listeners, commands, app_commands, components, rest, tasks)


class DiscordInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces and metrics for discord.py bots.

    ``instrument()`` accepts ``tracer_provider`` and ``meter_provider`` (the
    global ones by default) and ``settings`` (a :class:`DiscordOtelSettings`;
    read from the environment by default).
    """

    _patcher: Patcher | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.get("settings")
        if not isinstance(settings, DiscordOtelSettings):
            settings = DiscordOtelSettings.from_environ()
        tracer = get_tracer(
            semconv.SCOPE_NAME,
            __version__,
            tracer_provider=kwargs.get("tracer_provider"),
        )
        meter = get_meter(
            semconv.SCOPE_NAME,
            __version__,
            meter_provider=kwargs.get("meter_provider"),
        )
        instruments = Instruments(meter, settings.event_loop_lag_interval)
        runtime.active = runtime.Runtime(tracer, instruments, settings)
        patcher = Patcher()
        try:
            for module in _MODULES:
                module.instrument(patcher)
        except Exception:
            patcher.restore()
            runtime.active = None
            raise
        self._patcher = patcher

    def _uninstrument(self, **kwargs: Any) -> None:
        rt = runtime.active
        runtime.active = None
        if self._patcher is not None:
            self._patcher.restore()
            self._patcher = None
        for module in _MODULES:
            undo = getattr(module, "uninstrument", None)
            if undo is not None:
                undo()
        if rt is not None:
            rt.instruments.stop()
        clients.forget_all()
