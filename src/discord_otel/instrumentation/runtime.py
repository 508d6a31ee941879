"""State shared by the hooks while the instrumentation is active.

``runtime.active`` is the :class:`Runtime` of the current ``instrument()``
call, or ``None``: every hook checks it first and passes straight through to
discord.py when it is ``None``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from opentelemetry.trace import NoOpTracer, ProxyTracer, SpanContext, Tracer

from discord_otel.config import DiscordOtelSettings
from discord_otel.instrumentation.metrics import Instruments

K = TypeVar("K")
V = TypeVar("V")


class LRU(OrderedDict[K, V]):
    """A bounded mapping that forgets the least recently stored entries: store
    with :meth:`put`; reads (``get``, ``pop(key, None)``) are the dict's own."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> None:
        if key in self:  # a new key is stored last already
            self.move_to_end(key)
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


class Runtime:
    def __init__(
        self, tracer: Tracer, instruments: Instruments, settings: DiscordOtelSettings
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.settings = settings
        self.untraced = settings.untraced_events
        # interaction id -> (gateway receipt time_ns, interaction type name)
        self.interactions: LRU[int, tuple[int, str]] = LRU(2048)
        # message id -> span context of the command that sent it
        self.message_spans: LRU[int, SpanContext] = LRU(10_000)
        self.tracing = False
        self.on_tracing_change: list[Callable[[], None]] = []
        self.refresh_tracing()

    def refresh_tracing(self) -> bool:
        """Whether a real tracer is behind ``self.tracer`` (a proxy may get one later)."""
        tracer = self.tracer
        if isinstance(tracer, ProxyTracer):
            tracer = tracer._tracer
        tracing = not isinstance(tracer, NoOpTracer)
        if tracing != self.tracing:
            self.tracing = tracing
            for callback in self.on_tracing_change:
                callback()
        return tracing


active: Runtime | None = None
