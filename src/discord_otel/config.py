"""discord-otel's settings: every ``OTEL_PYTHON_DISCORD_*`` variable, its
default and its parsing, in one place.

A bad value never stops the bot: it gets one warning naming the variable, what
was wrong and the default used instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from discord_otel import environment_variables as env

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class InvalidSetting(ValueError):
    """A setting's value could not be used; the message says why."""


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidSetting("expected true or false")


def parse_seconds(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise InvalidSetting("expected a number of seconds") from None
        if not minimum <= value <= maximum:
            raise InvalidSetting(f"expected between {minimum:g} and {maximum:g} seconds")
        return value

    return parse


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise InvalidSetting(f"expected one of {', '.join(choices)}")
        return value

    return parse


def parse_event_names(raw: str) -> frozenset[str]:
    names = [part.strip().upper() for part in raw.split(",") if part.strip()]
    for name in names:
        if not name.replace("_", "").isalnum():
            raise InvalidSetting(f"{name!r} is not a gateway event name")
    return frozenset(names)


def parse_address(raw: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``port``; the host defaults to 127.0.0.1."""
    text = raw.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InvalidSetting("expected host:port") from None
    if not 0 <= port <= 65535:
        raise InvalidSetting("port must be between 0 and 65535")
    return host, port


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: T
    parse: Callable[[str], T]

    def read(self, environ: Mapping[str, str]) -> T:
        raw = environ.get(self.name)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            return self.parse(raw)
        except InvalidSetting as exc:
            logger.warning(
                "discord-otel: ignoring %s=%r (%s); using the default %r",
                self.name,
                raw,
                exc,
                self.default,
            )
            return self.default


DEFAULT_UNTRACED_EVENTS = frozenset({"PRESENCE_UPDATE", "TYPING_START"})

UNTRACED_EVENTS = Setting(
    env.OTEL_PYTHON_DISCORD_UNTRACED_EVENTS, DEFAULT_UNTRACED_EVENTS, parse_event_names
)
CAPTURE_USER_ID = Setting(env.OTEL_PYTHON_DISCORD_CAPTURE_USER_ID, False, parse_bool)
CAPTURE_MESSAGE_CONTENT = Setting(
    env.OTEL_PYTHON_DISCORD_CAPTURE_MESSAGE_CONTENT, False, parse_bool
)
CAPTURE_COMMAND_OPTIONS = Setting(
    env.OTEL_PYTHON_DISCORD_CAPTURE_COMMAND_OPTIONS, False, parse_bool
)
CAPTURE_SQL_PARAMETERS = Setting(env.OTEL_PYTHON_DISCORD_CAPTURE_SQL_PARAMETERS, False, parse_bool)
EVENT_LOOP_LAG_INTERVAL = Setting(
    env.OTEL_PYTHON_DISCORD_EVENT_LOOP_LAG_INTERVAL, 1.0, parse_seconds(0.05, 60.0)
)
SYSTEM_METRICS = Setting(
    env.OTEL_PYTHON_DISCORD_SYSTEM_METRICS, "preset", parse_choice("preset", "all", "off")
)
PROMETHEUS_ADDRESS: Setting[tuple[str, int] | None] = Setting(
    env.OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS, None, parse_address
)
HEALTH_ADDRESS: Setting[tuple[str, int] | None] = Setting(
    env.OTEL_PYTHON_DISCORD_HEALTH_ADDRESS, None, parse_address
)
SHUTDOWN_TIMEOUT = Setting(env.OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT, 5.0, parse_seconds(0.1, 120.0))
GC_FREEZE = Setting(env.OTEL_PYTHON_DISCORD_GC_FREEZE, True, parse_bool)
COMPILED = Setting(env.OTEL_PYTHON_DISCORD_COMPILED, True, parse_bool)


def parse_http_url(raw: str) -> str:
    """An ``http://host:port`` base URL, without a trailing slash."""
    value = raw.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest:
        raise InvalidSetting("expected a URL like http://127.0.0.1:8080")
    return value


# Set by ``discord-otel simulate`` for its child; not a user setting, so it is
# not in ALL_SETTINGS (nor in the README's table).
SIMULATOR_URL: Setting[str | None] = Setting(env.DISCORD_OTEL_SIMULATOR_URL, None, parse_http_url)

ALL_SETTINGS: tuple[Setting[Any], ...] = (
    UNTRACED_EVENTS,
    CAPTURE_USER_ID,
    CAPTURE_MESSAGE_CONTENT,
    CAPTURE_COMMAND_OPTIONS,
    CAPTURE_SQL_PARAMETERS,
    EVENT_LOOP_LAG_INTERVAL,
    SYSTEM_METRICS,
    PROMETHEUS_ADDRESS,
    HEALTH_ADDRESS,
    SHUTDOWN_TIMEOUT,
    GC_FREEZE,
    COMPILED,
)


@dataclass(frozen=True)
class DiscordOtelSettings:
    """The effective settings, read once from the environment."""

    untraced_events: frozenset[str] = DEFAULT_UNTRACED_EVENTS
    capture_user_id: bool = False
    capture_message_content: bool = False
    capture_command_options: bool = False
    capture_sql_parameters: bool = False
    event_loop_lag_interval: float = 1.0
    system_metrics: str = "preset"
    prometheus_address: tuple[str, int] | None = None
    health_address: tuple[str, int] | None = None
    shutdown_timeout: float = 5.0
    gc_freeze: bool = True
    compiled: bool = True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DiscordOtelSettings:
        source = os.environ if environ is None else environ
        return cls(
            untraced_events=UNTRACED_EVENTS.read(source),
            capture_user_id=CAPTURE_USER_ID.read(source),
            capture_message_content=CAPTURE_MESSAGE_CONTENT.read(source),
            capture_command_options=CAPTURE_COMMAND_OPTIONS.read(source),
            capture_sql_parameters=CAPTURE_SQL_PARAMETERS.read(source),
            event_loop_lag_interval=EVENT_LOOP_LAG_INTERVAL.read(source),
            system_metrics=SYSTEM_METRICS.read(source),
            prometheus_address=PROMETHEUS_ADDRESS.read(source),
            health_address=HEALTH_ADDRESS.read(source),
            shutdown_timeout=SHUTDOWN_TIMEOUT.read(source),
            gc_freeze=GC_FREEZE.read(source),
            compiled=COMPILED.read(source),
        )
