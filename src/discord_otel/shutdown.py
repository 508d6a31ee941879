"""When the bot stops, telemetry is flushed and shut down, within a bounded time.

Three ways a bot stops, one outcome (:meth:`TelemetryPipeline.shutdown`):

* ``bot.close()`` (which ``Client.run`` also calls on Ctrl-C): once the last
  running client has closed, the pipeline shuts down in a worker thread the
  closing coroutine awaits, so the event loop keeps running meanwhile;
* SIGTERM (Kubernetes, systemd, docker stop): when its handler is still the
  default, it becomes a graceful ``close()`` of the running clients, or, with
  none running, a normal ``SystemExit`` so that ``atexit`` runs;
* interpreter exit: an ``atexit`` hook.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import signal
import threading
from types import FrameType
from typing import Any

from discord_otel.pipeline import TelemetryPipeline

logger = logging.getLogger(__name__)

_installed = False
_lock = threading.Lock()


def _live_clients() -> list[Any]:
    try:
        registry = importlib.import_module("discord_otel.instrumentation.clients")
    except ImportError:
        return list(_own_clients)
    found = list(registry.live_clients())
    return [*found, *(c for c in _own_clients if c not in found)]


# Clients seen closing or starting through our own hook (used until the
# instrumentation's registry is importable).
_own_clients: Any = None


def _client_loop(client: Any) -> asyncio.AbstractEventLoop | None:
    loop = getattr(client, "loop", None)
    if loop is None:
        loop = getattr(getattr(client, "http", None), "loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running():
        return loop
    return None


_closing: set[asyncio.Future[Any]] = set()


def _close_soon(client: Any) -> None:
    task = asyncio.ensure_future(client.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _on_sigterm(pipeline: TelemetryPipeline) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        running = [
            (c, loop)
            for c in _live_clients()
            if not c.is_closed() and (loop := _client_loop(c)) is not None
        ]
        if not running or getattr(handler, "fired", False):
            raise SystemExit(128 + signum)
        handler.fired = True  # type: ignore[attr-defined]
        logger.info("discord-otel: SIGTERM received, closing the bot")
        for client, loop in running:
            loop.call_soon_threadsafe(_close_soon, client)

    return handler


def _wrap_client_close(pipeline: TelemetryPipeline) -> None:
    global _own_clients
    try:
        import discord
    except ImportError:  # pragma: no cover - discord.py is a dependency
        return
    import weakref

    _own_clients = weakref.WeakSet()
    for cls in (discord.Client, discord.AutoShardedClient):
        _wrap_close_of(cls, pipeline)


def _wrap_close_of(cls: Any, pipeline: TelemetryPipeline) -> None:
    original = cls.__dict__.get("close")
    if original is None or getattr(original, "__discord_otel_close__", False):
        return

    async def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        _own_clients.add(self)
        try:
            return await original(self, *args, **kwargs)
        finally:
            others = [c for c in _live_clients() if c is not self and not c.is_closed()]
            if not others and not pipeline.is_shut_down:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, pipeline.shutdown)

    close.__discord_otel_close__ = True  # type: ignore[attr-defined]
    close.__wrapped__ = original  # type: ignore[attr-defined]
    close.__doc__ = original.__doc__
    close.__qualname__ = original.__qualname__
    cls.close = close


def install_hooks(pipeline: TelemetryPipeline) -> None:
    """Shut ``pipeline`` down on ``bot.close()``, SIGTERM and exit (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(pipeline.shutdown)
    _wrap_client_close(pipeline)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm(pipeline))
        except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM
            logger.debug("discord-otel: cannot install a SIGTERM handler", exc_info=True)
