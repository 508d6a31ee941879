"""Running a scenario: each step sends something and waits for the bot's reaction."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from discord_otel.simulator.rest import RestCall
from discord_otel.simulator.scenario import Scenario, Step
from discord_otel.simulator.server import ReactionTimeout, StepFailed

if TYPE_CHECKING:
    from discord_otel.simulator.server import Simulator


@dataclass
class StepResult:
    """How one step went. A repeat block is one result covering all its iterations."""

    number: str
    label: str
    ok: bool
    calls: list[RestCall] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0
    sent: int = 1  # events sent (a repeat sends many)
    responded: int = 0  # of those, how many got the bot's reaction (or needed none)
    rate: float | None = None  # events per second reached, for repeat blocks


@dataclass
class ScenarioResult:
    """What a scenario run did: per-step results, the REST calls by route, unknown endpoints."""

    steps: list[StepResult]
    rest_calls: Counter[str]  # "METHOD /template" -> count, for the calls made during the run
    unknown_endpoints: list[str]
    elapsed: float
    source: str = "<scenario>"

    @property
    def ok(self) -> bool:
        """Every step got the bot's reaction."""
        return all(step.ok for step in self.steps)

    @property
    def responses(self) -> int:
        return sum(step.responded for step in self.steps)

    @property
    def failures(self) -> list[StepResult]:
        return [step for step in self.steps if not step.ok]


async def run_scenario(
    sim: Simulator, scenario: Scenario, *, wait_ready_timeout: float = 30
) -> ScenarioResult:
    """Run ``scenario`` against the bot connected to ``sim``."""
    if scenario.guilds > len(sim.state.guilds):
        raise ValueError(
            f"{scenario.source} needs {scenario.guilds} guilds; "
            f"the simulator has {len(sim.state.guilds)}"
        )
    for spec in scenario.faults:
        spec.install(sim.faults)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_call = len(sim.rest_log)
    first_unknown = len(sim.unknown_endpoints)
    await sim.wait_ready(wait_ready_timeout, commands=scenario.needs_commands())
    results = [await _run_step(sim, step, scenario.timeout) for step in scenario.steps]
    calls = sim.rest_log[first_call:]
    return ScenarioResult(
        steps=results,
        rest_calls=Counter(call.key for call in calls if call.known),
        unknown_endpoints=sim.unknown_endpoints[first_unknown:],
        elapsed=loop.time() - started,
        source=scenario.source,
    )


async def _run_step(sim: Simulator, step: Step, default_timeout: float) -> StepResult:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = StepResult(step.number, step.label, ok=True)
    try:
        if step.kind == "repeat":
            await _run_repeat(sim, step, default_timeout, result)
        else:
            result.calls = await _perform(sim, step, step.timeout or default_timeout, settle=0.05)
            result.responded = 1
    except (ReactionTimeout, StepFailed, RuntimeError, ValueError, KeyError) as exc:
        result.ok = False
        result.error = str(exc) or type(exc).__name__
    result.elapsed = loop.time() - started
    return result


async def _run_repeat(
    sim: Simulator, step: Step, default_timeout: float, result: StepResult
) -> None:
    loop = asyncio.get_running_loop()
    rate = step.params.get("rate")
    count = int(step.target)
    pending: list[asyncio.Task[list[RestCall]]] = []
    started = loop.time()
    sent = 0
    for _ in range(count):
        for inner in step.steps:
            timeout = inner.timeout or default_timeout
            if inner.kind == "message" and not inner.wait:
                await _perform(sim, inner, timeout, settle=0)  # the pre-serialised fast path
            else:
                pending.append(asyncio.create_task(_perform(sim, inner, timeout, settle=0)))
            sent += 1
            if rate:
                delay = started + sent / float(rate) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif sent % 200 == 0:
                await asyncio.sleep(0)  # let the writer and the bot run
    await sim._flush_connections()
    send_elapsed = loop.time() - started
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    result.sent = sent
    result.responded = sent - len(errors)
    result.rate = sent / send_elapsed if send_elapsed > 0 else float(sent)
    for outcome in outcomes:
        if isinstance(outcome, list):
            result.calls.extend(outcome)
    if errors:
        result.ok = False
        result.error = f"{len(errors)} of {sent} got no reaction (first: {errors[0]})"


def _perform(
    sim: Simulator, step: Step, timeout: float, *, settle: float
) -> Coroutine[Any, Any, list[RestCall]]:
    params: dict[str, Any] = dict(step.params)
    guild = int(params.get("guild", 0))
    wait = step.wait
    if step.kind == "message":
        return sim.send_message(
            str(step.target),
            guild=guild,
            channel=int(params.get("channel", 0)),
            author=params.get("author"),
            wait=wait,
            timeout=timeout,
            settle=settle,
        )
    if step.kind == "slash":
        return sim.slash(
            str(step.target), params.get("options"), guild=guild, timeout=timeout, wait=wait
        )
    if step.kind == "user_command":
        return sim.user_command(
            str(step.target), params.get("target"), guild=guild, timeout=timeout
        )
    if step.kind == "message_command":
        return sim.message_command(str(step.target), guild=guild, timeout=timeout)
    if step.kind == "click":
        return sim.click(str(step.target), timeout=timeout)
    if step.kind == "select":
        return sim.select(str(step.target), list(params["values"]), timeout=timeout)
    if step.kind == "submit":
        return sim.submit(str(step.target), params.get("fields"), guild=guild, timeout=timeout)
    if step.kind == "autocomplete":
        return sim.autocomplete(
            str(step.target),
            str(params["option"]),
            str(params["value"]),
            options=params.get("options"),
            guild=guild,
            timeout=timeout,
        )
    return _perform_control(sim, step, timeout)


async def _perform_control(sim: Simulator, step: Step, timeout: float) -> list[RestCall]:
    if step.kind == "dispatch":
        await sim.dispatch(
            str(step.target), dict(step.params["data"]), shard=int(step.params.get("shard", 0))
        )
    elif step.kind == "reconnect":
        await sim.force_reconnect(
            int(step.params.get("shard", 0)), str(step.target), timeout=timeout
        )
    elif step.kind == "sleep":
        await asyncio.sleep(float(step.target))
    return []
