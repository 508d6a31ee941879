"""The live ``discord.Client`` objects the instrumentation has seen.

A client is tracked when it logs in or connects (its event loop is running by
then). Gauges read the tracked clients at collection time, and other parts of
discord-otel (the health server) register a callback with
:func:`add_start_callback` to learn about each client once.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable

import discord

logger = logging.getLogger(__name__)

StartCallback = Callable[[discord.Client], None]

_clients: weakref.WeakSet[discord.Client] = weakref.WeakSet()
_callbacks: list[StartCallback] = []


def add_start_callback(callback: StartCallback) -> None:
    """Call ``callback(client)`` once per client, once its event loop is running.

    Clients already started are passed to it right away (from the caller's
    thread; the callback should schedule work on ``client.loop`` if it needs to).
    """
    _callbacks.append(callback)
    for client in list(_clients):
        _run(callback, client)


def remove_start_callback(callback: StartCallback) -> None:
    with contextlib.suppress(ValueError):
        _callbacks.remove(callback)


def live_clients() -> list[discord.Client]:
    return list(_clients)


def track(client: discord.Client) -> None:
    """Remember ``client``; the first time, run the start callbacks (loop running)."""
    if client in _clients:
        return
    _clients.add(client)
    for callback in list(_callbacks):
        _run(callback, client)


def forget_all() -> None:
    _clients.clear()


def _run(callback: StartCallback, client: discord.Client) -> None:
    try:
        callback(client)
    except Exception:
        logger.warning("discord-otel: a client start callback failed", exc_info=True)
