"""Point discord.py at the simulator, in this process, without touching the bot.

discord.py builds every REST URL (its HTTPClient and the webhook/interaction
adapter alike) from ``discord.http.Route.BASE`` and connects a non-sharded
client to ``DiscordWebSocket.DEFAULT_GATEWAY``; a sharded client asks
``GET /gateway/bot``, which the simulator answers with its own URL. Those two
class attributes are all there is to redirect.

:func:`apply_from_environment` is what ``discord-otel simulate`` uses for its
child: through a small ``sitecustomize`` for ``python bot.py``, and through the
``opentelemetry_pre_instrument`` entry point for ``opentelemetry-instrument``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

logger = logging.getLogger(__name__)


def _urls(base_url: str) -> tuple[str, str]:
    base = base_url.rstrip("/")
    ws = "ws" + base[len("http") :] if base.startswith("http") else base
    return base + "/api/v10", ws + "/gateway"


def apply(base_url: str) -> tuple[str, object]:
    """Redirect discord.py to ``base_url`` for good; returns what it replaced."""
    import yarl
    from discord import gateway, http

    rest_base, gateway_url = _urls(base_url)
    previous = (http.Route.BASE, gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    http.Route.BASE = rest_base
    gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    return previous


@contextlib.contextmanager
def redirect(base_url: str) -> Iterator[None]:
    """Redirect discord.py to ``base_url`` inside the ``with`` block, then restore it."""
    from discord import gateway, http

    previous_base, previous_gateway = apply(base_url)
    try:
        yield
    finally:
        http.Route.BASE = previous_base
        gateway.DiscordWebSocket.DEFAULT_GATEWAY = previous_gateway  # type: ignore[assignment]


def apply_from_environment() -> None:
    """Redirect to ``DISCORD_OTEL_SIMULATOR_URL`` if it is set; otherwise do nothing.

    Called at interpreter start-up, so it is cheap when unset and never raises.
    """
    try:
        from discord_otel.config import SIMULATOR_URL

        url = SIMULATOR_URL.read(os.environ)
        if url is None:
            return
        apply(url)
        logger.debug("discord-otel: discord.py redirected to the simulator at %s", url)
    except Exception:  # start-up must go on; the bot would then fail loudly on its own
        logger.warning(
            "discord-otel: could not redirect discord.py to the simulator", exc_info=True
        )
