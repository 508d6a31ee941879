"""REST calls: the Python request hook against the compiled one
(``_gateway_speedups.RestHook``), scenario by scenario -- the original's return
value and exception passed through unchanged, each call in
``discord.rest.request.duration`` under the same attributes, rate limits counted,
nothing left open; traced, the same span -- and both through a real bot against
the simulator."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from typing import Any

import discord
import discord.http
import pytest
from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider
from tests.instrumentation.conftest import (
    Telemetry,
    every_event_dropped,
    finished_task,
    reinstrument,
    running_bot,
)

from discord_otel.instrumentation import rest

MESSAGES = "/channels/{channel_id}/messages"


class Response:
    """What discord.py's ``json_or_text`` reads of an aiohttp response."""

    def __init__(self, status: int, body: str = '{"id": "1"}', **headers: str) -> None:
        self.status = status
        self.reason = "reason"
        self.body = body
        self.headers = {"content-type": "application/json", **headers}

    async def text(self, encoding: str | None = None) -> str:
        return self.body


async def succeeds(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    data = await discord.http.json_or_text(Response(200, **{"X-Ratelimit-Remaining": "4"}))
    await asyncio.sleep(0)
    return data


async def is_rate_limited_once(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    limited = Response(
        429, '{"retry_after": 0.01, "global": false}', **{"X-RateLimit-Scope": "user"}
    )
    await discord.http.json_or_text(limited)
    await asyncio.sleep(0.01)
    return await discord.http.json_or_text(Response(204, "", **{"content-type": "text/plain"}))


async def is_not_found(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    response = Response(404, '{"message": "Unknown", "code": 10003}')
    data = await discord.http.json_or_text(response)
    raise discord.NotFound(response, data)  # type: ignore[arg-type]


async def cannot_connect(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    raise OSError("connection refused")


async def waits(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    await asyncio.sleep(3600)


async def calls_another(client: Any, route: discord.http.Route, **kwargs: Any) -> Any:
    """A request that makes another request first (the outer call is the task's again
    after the inner one)."""
    if route.path == "/users/@me":
        return await discord.http.json_or_text(Response(200))
    inner = await client.request(discord.http.Route("GET", "/users/@me"))
    data = await discord.http.json_or_text(Response(201))
    return {"inner": inner, "outer": data}


SCENARIOS: dict[str, dict[str, Any]] = {
    "succeeds": {"original": succeeds},
    "is rate limited once": {"original": is_rate_limited_once},
    "is not found": {"original": is_not_found},
    "cannot connect": {"original": cannot_connect},
    "is cancelled while it waits": {"original": waits, "cancel_after": 2},
    "is cancelled before it starts": {"original": waits, "cancel_after": 0},
    "makes another call": {"original": calls_another},
}


@pytest.fixture
def implementation(telemetry: Telemetry, gateway_parser: str) -> Iterator[str]:
    """Metrics only (no tracer), with the Python or the compiled hook."""
    reinstrument(telemetry, NoOpTracerProvider())
    installed = vars(discord.http.HTTPClient)["request"]
    assert (type(installed).__name__ == "RestHook") == (gateway_parser == "compiled")
    observer = discord.http.json_or_text
    assert (type(observer).__name__ == "AttemptObserver") == (gateway_parser == "compiled")
    yield gateway_parser
    telemetry.uninstrument()


def client_of(request: Callable[..., Any]) -> Any:
    """A client whose class has ``request`` as its ``request`` (bound like a method)."""
    return type("Adapter", (), {"request": request})()


def recorded(telemetry: Telemetry) -> dict[str, list[tuple[dict[str, Any], int]]]:
    """What the metrics say of the REST calls: each series with its count."""
    metrics = telemetry.metrics()
    found: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for name in (
        "discord.rest.request.duration",
        "discord.rest.ratelimits",
        "discord.rest.ratelimit.remaining",
    ):
        metric = metrics.get(name)
        points = [] if metric is None else metric.data.data_points
        found[name] = sorted(
            (
                (dict(p.attributes), int(getattr(p, "count", getattr(p, "value", 0))))
                for p in points
            ),
            key=repr,
        )
    return found


async def outcome(
    request: Callable[..., Any], original: Callable[..., Any], cancel_after: int | None = None
) -> dict[str, Any]:
    """Call ``request`` as discord.py does (awaited in a task), and what a user could see."""
    client = client_of(request)
    route = discord.http.Route("POST", MESSAGES, channel_id=5)
    task, error = await finished_task(
        client.request(route, json={"content": "hi"}), None, cancel_after
    )
    return {
        "cancelled": task.cancelled(),
        "result": None if task.cancelled() or error is not None else task.result(),
        "error": repr(error) if error is not None else None,
        "traceback names the original": error is None
        or original.__name__ in repr(_frames(error.__traceback__)),
    }


def _frames(traceback: Any) -> list[str]:
    names = []
    while traceback is not None:
        names.append(traceback.tb_frame.f_code.co_name)
        traceback = traceback.tb_next
    return names


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_call_behaves_as_the_original_and_is_recorded(
    scenario: str, telemetry: Telemetry, implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SCENARIOS[scenario]["original"]
    expected = await outcome(original, **SCENARIOS[scenario])
    hook = rest._chosen_request_hook(original, False)
    assert (type(hook).__name__ == "RestHook") == (implementation == "compiled")
    seen = await outcome(hook, **SCENARIOS[scenario])
    assert seen == expected
    assert rest._calls == {}  # nothing left open
    # what both implementations record, spelled out
    assert recorded(telemetry) == EXPECTED[scenario]


def _series(status: int | None, error: str | None = None, method: str = "POST") -> dict[str, Any]:
    attributes: dict[str, Any] = {"http.request.method": method, "url.template": MESSAGES}
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is not None:
        attributes["error.type"] = error
    return attributes


def _expected(
    *series: tuple[dict[str, Any], int], limits: int = 0, remaining: int | None = None
) -> dict[str, Any]:
    ratelimits = [({"url.template": MESSAGES, "discord.ratelimit.scope": "bucket"}, limits)]
    return {
        "discord.rest.request.duration": sorted(series, key=repr),
        "discord.rest.ratelimits": ratelimits if limits else [],
        "discord.rest.ratelimit.remaining": (
            [] if remaining is None else [({"url.template": MESSAGES}, remaining)]
        ),
    }


EXPECTED: dict[str, dict[str, Any]] = {
    "succeeds": _expected((_series(200), 1), remaining=4),
    # the last attempt's status; the 429 counted by scope
    "is rate limited once": _expected((_series(204), 1), limits=1),
    "is not found": _expected((_series(404, "404"), 1)),
    "cannot connect": _expected((_series(None, "OSError"), 1)),
    "is cancelled while it waits": _expected((_series(None, "CancelledError"), 1)),
    # cancelled before it started: never ran, nothing to time
    "is cancelled before it starts": _expected(),
    # each call its own status: the outer one's is not the inner one's
    "makes another call": _expected(
        (_series(201), 1),
        (
            {
                "http.request.method": "GET",
                "url.template": "/users/@me",
                "http.response.status_code": 200,
            },
            1,
        ),
    ),
}


async def test_the_coroutine_protocol(telemetry: Telemetry, implementation: str) -> None:
    """Driven by hand, as an event loop would: ``send`` until ``StopIteration``
    carries the original's value; ``close`` of a suspended call closes the
    original's coroutine and records it (as a coroutine's ``finally`` would)."""
    hook = rest._chosen_request_hook(succeeds, False)
    client = client_of(hook)
    route = discord.http.Route("POST", MESSAGES, channel_id=5)

    call = client.request(route)
    assert call.send(None) is None  # suspended at asyncio.sleep(0)
    with pytest.raises(StopIteration) as returned:
        call.send(None)
    assert returned.value.value == {"id": "1"}
    with pytest.raises(RuntimeError):
        call.send(None)  # cannot reuse an awaited coroutine

    suspended = client.request(route)
    suspended.send(None)  # at the original's first await
    suspended.close()
    # never started: closed without a "never awaited" warning of the original's
    client.request(route).close()
    gc.collect()
    assert rest._calls == {}
    series = dict((repr(a), n) for a, n in recorded(telemetry)["discord.rest.request.duration"])
    # the one closed while suspended, after its answer: as a coroutine's ``finally`` sees it
    assert series == {repr(_series(200)): 1, repr(_series(200, "GeneratorExit")): 1}


@pytest.mark.parametrize("tracing", ["metrics only", "every event dropped"])
async def test_calls_through_a_real_bot(
    telemetry: Telemetry, implementation: str, tracing: str
) -> None:
    """A bot's replies, a rate-limited one, a call that fails and an interaction's
    callback, metrics only or under dropped events: each in its series, the
    interaction acknowledged, no span."""
    if tracing == "every event dropped":
        reinstrument(telemetry, every_event_dropped(telemetry))
    async with running_bot() as harness:

        @harness.bot.command()
        async def bans(ctx: Any) -> None:
            try:
                [entry async for entry in ctx.guild.bans()]
            except discord.NotFound:
                await ctx.send("no bans endpoint here")

        harness.sim.faults.add_ratelimit(f"POST {MESSAGES}", scope="bucket", retry_after=0.05)
        await harness.sim.send_message("!ping")
        await harness.sim.send_message("!bans")
        await harness.sim.slash("config set", {"key": "a", "value": "b"})
        metrics = telemetry.metrics()
    series = [dict(p.attributes) for p in metrics["discord.rest.request.duration"].data.data_points]
    assert {
        "http.request.method": "POST",
        "url.template": MESSAGES,
        "http.response.status_code": 200,
    } in series
    assert {
        "http.request.method": "GET",
        "url.template": "/guilds/{guild_id}/bans",
        "http.response.status_code": 404,
        "error.type": "404",
    } in series
    assert any(
        s["url.template"] == "/interactions/{webhook_id}/{webhook_token}/callback" for s in series
    )
    (limited,) = metrics["discord.rest.ratelimits"].data.data_points
    assert limited.value == 1
    (ack,) = metrics["discord.interaction.ack.duration"].data.data_points
    assert ack.count == 1
    assert rest._calls == {}
    assert telemetry.spans() == []


def spans_of(telemetry: Telemetry) -> list[tuple[Any, ...]]:
    """The REST spans as a user reads them: name, outcome attributes, events,
    status, and the parent's name (None: a root)."""
    described = []
    for span in telemetry.spans():
        attributes = dict(span.attributes or {})
        parent = telemetry.parent(span).name if span.parent is not None else None
        described.append(
            (
                span.name,
                attributes.get("http.response.status_code"),
                attributes.get("error.type"),
                attributes.get("http.request.resend_count"),
                [event.name for event in span.events],
                span.status.status_code.name,
                parent,
            )
        )
    return sorted(described, key=repr)


POST = f"POST {MESSAGES}"
EXPECTED_SPANS: dict[str, list[tuple[Any, ...]]] = {
    "succeeds": [(POST, 200, None, None, [], "UNSET", None)],
    # one span over both attempts: the 429 an event, the retry counted
    "is rate limited once": [(POST, 204, None, 1, ["discord.ratelimited"], "UNSET", None)],
    "is not found": [(POST, 404, "404", None, [], "ERROR", None)],
    "cannot connect": [(POST, None, "OSError", None, [], "ERROR", None)],
    "is cancelled while it waits": [(POST, None, "CancelledError", None, [], "ERROR", None)],
    "is cancelled before it starts": [],
    # the inner call's span is the outer one's child
    "makes another call": [
        ("GET /users/@me", 200, None, None, [], "UNSET", POST),
        (POST, 201, None, None, [], "UNSET", None),
    ],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_traced_call_behaves_as_the_original_and_is_its_span(
    scenario: str, telemetry: Telemetry, gateway_parser: str
) -> None:
    """Tracing, the compiled hook makes the call's span in Python as the Python
    hook does, around the same unchanged call; both leave nothing open or current."""
    original = SCENARIOS[scenario]["original"]
    expected = await outcome(original, **SCENARIOS[scenario])
    hook = rest._chosen_request_hook(original, False)
    assert (type(hook).__name__ == "RestHook") == (gateway_parser == "compiled")
    telemetry.exporter.clear()
    seen = await outcome(hook, **SCENARIOS[scenario])
    assert seen == expected
    assert rest._calls == {}
    assert spans_of(telemetry) == EXPECTED_SPANS[scenario]
    assert trace.get_current_span() is trace.INVALID_SPAN
