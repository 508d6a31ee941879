"""Fault injection for the simulated REST API.

A fault applies to the calls of one route, written ``"METHOD /template"`` (for
example ``"POST /channels/{channel_id}/messages"``), ``"/template"`` for every
method, or ``"*"`` for every route. ``after`` skips that many matching calls
first; ``times`` is how many calls the fault affects (``None``: all of them).

- a rate limit answers 429 with Discord's body (``retry_after``, ``global``) and
  headers (``Retry-After``, ``X-RateLimit-Scope``, ``X-RateLimit-Global`` for the
  global scope, ``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset-After``);
  ``scope`` is ``bucket`` (Discord's ``user`` scope), ``global`` or ``shared``;
- a server error answers a 5xx with Discord's error JSON;
- a delay holds the response for some seconds before answering normally.

In a scenario file they are listed under ``faults:`` (see :mod:`.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RATELIMIT_SCOPES = ("bucket", "global", "shared")
# What Discord puts in X-RateLimit-Scope for each scope.
SCOPE_HEADER = {"bucket": "user", "global": "global", "shared": "shared"}


@dataclass
class Fault:
    """One injected fault; ``fired`` counts the calls it has affected."""

    kind: str  # "ratelimit", "server_error" or "delay"
    route: str
    times: int | None = 1
    after: int = 0
    scope: str = "bucket"
    retry_after: float = 0.2
    status: int = 500
    seconds: float = 0.0
    seen: int = 0
    fired: int = 0

    def applies_to(self, method: str, template: str) -> bool:
        if self.route == "*":
            return True
        wanted_method, _, wanted_path = self.route.partition(" ")
        if not wanted_path:  # only a path: every method
            return wanted_method == template
        return wanted_method.upper() == method and wanted_path == template

    def take(self) -> bool:
        """Count a matching call; True if the fault fires on it."""
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class Faults:
    """The faults in force; the simulator consults it on every REST call."""

    active: list[Fault] = field(default_factory=list)

    def add_ratelimit(
        self,
        route: str,
        *,
        scope: str = "bucket",
        retry_after: float = 0.2,
        times: int | None = 1,
        after: int = 0,
    ) -> Fault:
        """Answer 429 to the next ``times`` calls of ``route``."""
        if scope not in RATELIMIT_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(RATELIMIT_SCOPES)}, not {scope!r}")
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        return self._add(
            Fault("ratelimit", route, times, after, scope=scope, retry_after=retry_after)
        )

    def add_server_error(
        self, route: str, *, status: int = 500, times: int | None = 1, after: int = 0
    ) -> Fault:
        """Answer a 5xx to the next ``times`` calls of ``route``."""
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx, not {status}")
        return self._add(Fault("server_error", route, times, after, status=status))

    def add_delay(
        self, route: str, seconds: float, *, times: int | None = None, after: int = 0
    ) -> Fault:
        """Hold the responses of ``route`` for ``seconds`` (every call unless ``times``)."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        return self._add(Fault("delay", route, times, after, seconds=seconds))

    def clear(self) -> None:
        self.active.clear()

    def _add(self, fault: Fault) -> Fault:
        self.active.append(fault)
        return fault

    def for_call(self, method: str, template: str) -> tuple[float, Fault | None]:
        """The delay to apply, and the error fault (if any) to answer with instead."""
        delay = 0.0
        error: Fault | None = None
        for fault in self.active:
            if not fault.applies_to(method, template):
                continue
            if fault.kind == "delay":
                if fault.take():
                    delay += fault.seconds
            elif error is None and fault.take():
                error = fault
        return delay, error
