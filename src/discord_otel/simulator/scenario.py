"""Scenario files: what the simulated users do, step by step (YAML or JSON).

::

    guilds: 2                 # optional, default 1
    timeout: 10               # optional: default seconds each step waits for the bot
    faults:                   # optional: REST faults in force for the whole run
      - ratelimit: "POST /channels/{channel_id}/messages"
        scope: bucket         # bucket (default), global or shared
        retry_after: 0.3      # seconds (default 0.2)
        times: 1              # calls affected (default 1; null: every call)
        after: 0              # matching calls let through first (default 0)
      - server_error: "POST /channels/{channel_id}/messages"
        status: 503           # default 500
      - delay: "POST /interactions/{webhook_id}/{webhook_token}/callback"
        seconds: 1.5          # times defaults to every call
    steps:
      - message: "!ping"                  # a member posts in a guild text channel
      - slash: "config set"               # a chat-input command, with subcommands
        options: {key: colour, value: red}
      - user_command: "Inspect"           # user context menu (target: a member)
      - message_command: "Quote"          # message context menu, on the bot's last message
      - click: "confirm"                  # a button, on the latest bot message carrying it
      - select: "colour"
        values: ["red"]
      - submit: "feedback"                # the modal the bot opened
        fields: {answer: "yes"}
      - autocomplete: "echo"
        option: "text"
        value: "h"
      - dispatch: PRESENCE_UPDATE         # any raw gateway event; no reaction awaited
        data: {...}
        shard: 0
      - reconnect: resume                 # resume (op 7), invalid_session (op 9) or close
        shard: 0
      - sleep: 0.5
      - repeat: 200                       # run the inner steps N times
        rate: 100                         # per second across the block (optional)
        steps: [{message: "hello", wait: false}]

Every step accepts ``timeout`` (seconds) and ``wait: false`` (send, do not wait
for the bot's reaction); ``message``, ``slash``, ``user_command``,
``message_command``, ``submit`` and ``autocomplete`` accept ``guild`` (an index).
A bad file raises :class:`ScenarioError` naming the file, the step and the
problem, before anything starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from discord_otel.simulator.faults import RATELIMIT_SCOPES, Faults

STEP_KINDS: dict[str, frozenset[str]] = {
    "message": frozenset({"guild", "channel", "author"}),
    "slash": frozenset({"options", "guild"}),
    "user_command": frozenset({"target", "guild"}),
    "message_command": frozenset({"guild"}),
    "click": frozenset(),
    "select": frozenset({"values"}),
    "submit": frozenset({"fields", "guild"}),
    "autocomplete": frozenset({"option", "value", "options", "guild"}),
    "dispatch": frozenset({"data", "shard"}),
    "reconnect": frozenset({"shard"}),
    "sleep": frozenset(),
    "repeat": frozenset({"rate", "steps"}),
}
COMMON_KEYS = frozenset({"timeout", "wait"})
RECONNECT_KINDS = ("resume", "invalid_session", "close")
FAULT_KINDS: dict[str, frozenset[str]] = {
    "ratelimit": frozenset({"scope", "retry_after", "times", "after"}),
    "server_error": frozenset({"status", "times", "after"}),
    "delay": frozenset({"seconds", "times", "after"}),
}
# Steps whose reaction is an interaction with a registered command.
COMMAND_STEPS = frozenset({"slash", "user_command", "message_command", "autocomplete"})


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the step and the problem."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        super().__init__(f"{source}: {where}: {problem}")
        self.source = source
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class Step:
    """One step; ``kind`` is its key (``message``, ``slash``, ...), ``target`` its value."""

    kind: str
    target: Any
    number: str  # "3", or "5.2" inside a repeat: how errors and summaries name it
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    wait: bool = True
    steps: tuple[Step, ...] = ()  # a repeat's inner steps

    @property
    def label(self) -> str:
        if self.kind == "repeat":
            rate = self.params.get("rate")
            return f"repeat {self.target}x" + (f" at {rate:g}/s" if rate else "")
        if self.kind in ("sleep",):
            return f"sleep {self.target}s"
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    route: str
    params: Mapping[str, Any]

    def install(self, faults: Faults) -> None:
        params = dict(self.params)
        if self.kind == "ratelimit":
            faults.add_ratelimit(self.route, **params)
        elif self.kind == "server_error":
            faults.add_server_error(self.route, **params)
        else:
            faults.add_delay(self.route, params.pop("seconds"), **params)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario."""

    steps: tuple[Step, ...]
    guilds: int = 1
    timeout: float = 10.0
    faults: tuple[FaultSpec, ...] = ()
    source: str = "<scenario>"

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read and validate a YAML or JSON scenario file."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(source, "file", f"cannot be read ({exc.strerror})") from None
        try:
            data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ScenarioError(source, "file", f"is not valid {_format(source)}: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<scenario>") -> Scenario:
        """Validate an already parsed scenario."""
        if not isinstance(data, dict):
            raise ScenarioError(source, "top level", "expected a mapping with a 'steps' list")
        unknown = set(data) - {"guilds", "timeout", "faults", "steps"}
        if unknown:
            raise ScenarioError(
                source, "top level", f"unknown key(s) {', '.join(sorted(map(str, unknown)))}"
            )
        guilds = data.get("guilds", 1)
        if not isinstance(guilds, int) or isinstance(guilds, bool) or not 1 <= guilds <= 1000:
            raise ScenarioError(source, "guilds", "expected a whole number from 1 to 1000")
        timeout = _seconds(data.get("timeout", 10.0), source, "timeout", minimum=0.1)
        steps = _steps(data.get("steps"), source, prefix="", guilds=guilds)
        faults = _faults(data.get("faults") or [], source)
        return cls(steps=steps, guilds=guilds, timeout=timeout, faults=faults, source=source)

    def needs_commands(self) -> bool:
        """Whether a step invokes an application command (so the run waits for a sync)."""
        return _any_kind(self.steps, COMMAND_STEPS)


def _any_kind(steps: Sequence[Step], kinds: frozenset[str]) -> bool:
    return any(s.kind in kinds or _any_kind(s.steps, kinds) for s in steps)


def _format(source: str) -> str:
    return "JSON" if source.endswith(".json") else "YAML"


def _seconds(value: Any, source: str, where: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ScenarioError(
            source, where, f"expected a number of seconds (at least {minimum:g}), got {value!r}"
        )
    return float(value)


def _steps(raw: Any, source: str, *, prefix: str, guilds: int) -> tuple[Step, ...]:
    where = f"step {prefix.rstrip('.')}" if prefix else "steps"
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(source, where, "expected a non-empty list of steps")
    return tuple(
        _step(item, source, f"{prefix}{index}", guilds) for index, item in enumerate(raw, 1)
    )


def _step(raw: Any, source: str, number: str, guilds: int) -> Step:
    where = f"step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(
            source, where, f"expected a mapping like {{message: '!ping'}}, got {raw!r}"
        )
    kinds = [key for key in raw if key in STEP_KINDS]
    if len(kinds) != 1:
        found = ", ".join(map(str, raw)) or "nothing"
        raise ScenarioError(
            source, where, f"expected exactly one of {', '.join(STEP_KINDS)} (found: {found})"
        )
    kind = kinds[0]
    where = f"step {number} ({kind})"
    target = raw[kind]
    params = {key: value for key, value in raw.items() if key != kind and key not in COMMON_KEYS}
    unknown = set(params) - STEP_KINDS[kind]
    if unknown:
        allowed = ", ".join(sorted(STEP_KINDS[kind] | COMMON_KEYS)) or "none"
        raise ScenarioError(
            source,
            where,
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {allowed})",
        )
    timeout = (
        _seconds(raw["timeout"], source, f"{where} timeout", minimum=0.01)
        if "timeout" in raw
        else None
    )
    wait = raw.get("wait", True)
    if not isinstance(wait, bool):
        raise ScenarioError(source, where, "'wait' must be true or false")
    _check_step(kind, target, params, source, where, guilds)
    inner: tuple[Step, ...] = ()
    if kind == "repeat":
        inner = _steps(params.pop("steps", None), source, prefix=f"{number}.", guilds=guilds)
    return Step(kind, target, number, params, timeout, wait, inner)


def _check_step(
    kind: str, target: Any, params: dict[str, Any], source: str, where: str, guilds: int
) -> None:
    def fail(problem: str) -> None:
        raise ScenarioError(source, where, problem)

    if kind in ("sleep",):
        _seconds(target, source, where)
    elif kind == "repeat":
        if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= 10_000_000:
            fail(f"expected a repeat count from 1 to 10000000, got {target!r}")
        if "rate" in params:
            rate = params["rate"]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
                fail(f"'rate' must be a positive number per second, got {rate!r}")
    elif kind == "reconnect":
        if target not in RECONNECT_KINDS:
            fail(f"expected one of {', '.join(RECONNECT_KINDS)}, got {target!r}")
    elif not isinstance(target, str) or not target.strip():
        fail(f"expected a non-empty string, got {target!r}")
    if kind == "dispatch":
        if not target.isupper():
            fail(f"expected a gateway event name like PRESENCE_UPDATE, got {target!r}")
        if not isinstance(params.get("data"), dict):
            fail("'data' must be a mapping (the event's payload)")
    if kind == "select":
        values = params.get("values")
        if not isinstance(values, list) or not values:
            fail("'values' must be a non-empty list")
    if kind == "slash" and not isinstance(params.get("options", {}), dict):
        fail("'options' must be a mapping of option name to value")
    if kind == "submit" and not isinstance(params.get("fields", {}), dict):
        fail("'fields' must be a mapping of field custom_id to value")
    if kind == "autocomplete":
        if not isinstance(params.get("option"), str):
            fail("'option' must name the option being typed into")
        if "value" not in params:
            fail("'value' must give what the user typed")
    guild = params.get("guild", 0)
    if not isinstance(guild, int) or isinstance(guild, bool) or not 0 <= guild < guilds:
        fail(f"'guild' must be a guild index from 0 to {guilds - 1}, got {guild!r}")
    shard = params.get("shard", 0)
    if not isinstance(shard, int) or isinstance(shard, bool) or shard < 0:
        fail(f"'shard' must be a shard number, got {shard!r}")


def _faults(raw: Any, source: str) -> tuple[FaultSpec, ...]:
    if not isinstance(raw, list):
        raise ScenarioError(source, "faults", "expected a list of faults")
    specs = []
    for index, item in enumerate(raw, 1):
        where = f"fault {index}"
        if not isinstance(item, dict):
            raise ScenarioError(
                source,
                where,
                "expected a mapping like {ratelimit: 'POST /channels/{channel_id}/messages'}",
            )
        kinds = [key for key in item if key in FAULT_KINDS]
        if len(kinds) != 1:
            raise ScenarioError(source, where, f"expected exactly one of {', '.join(FAULT_KINDS)}")
        kind = kinds[0]
        where = f"fault {index} ({kind})"
        route = item[kind]
        if not isinstance(route, str) or not (route == "*" or "/" in route):
            raise ScenarioError(
                source,
                where,
                f"expected a route like 'POST /channels/{{channel_id}}/messages', got {route!r}",
            )
        params = {key: value for key, value in item.items() if key != kind}
        unknown = set(params) - FAULT_KINDS[kind]
        if unknown:
            raise ScenarioError(
                source, where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}"
            )
        if kind == "delay" and "seconds" not in params:
            raise ScenarioError(source, where, "'seconds' is required")
        if "scope" in params and params["scope"] not in RATELIMIT_SCOPES:
            raise ScenarioError(
                source, where, f"'scope' must be one of {', '.join(RATELIMIT_SCOPES)}"
            )
        for key in ("retry_after", "seconds"):
            if key in params:
                _seconds(params[key], source, f"{where} {key}")
        for key in ("times", "after", "status"):
            value = params.get(key, 0)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ScenarioError(source, where, f"'{key}' must be a whole number, got {value!r}")
        spec = FaultSpec(kind, route, params)
        try:
            spec.install(Faults())  # the same checks the real install makes
        except ValueError as exc:
            raise ScenarioError(source, where, str(exc)) from None
        specs.append(spec)
    return tuple(specs)
