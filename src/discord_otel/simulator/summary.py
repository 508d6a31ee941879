"""The summary ``discord-otel simulate`` prints: steps, REST calls by route, unknown endpoints."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from discord_otel.simulator.runner import ScenarioResult


def print_summary(result: ScenarioResult, console: Console | None = None) -> None:
    console = console or Console()
    steps = Table(title=f"Scenario {result.source}", title_justify="left")
    steps.add_column("#", justify="right")
    steps.add_column("step")
    steps.add_column("result")
    steps.add_column("responses", justify="right")
    steps.add_column("REST calls", justify="right")
    steps.add_column("time", justify="right")
    steps.add_column("note")
    for step in result.steps:
        note = step.error or ""
        if step.rate is not None:
            note = f"{step.rate:,.0f} events/s reached" + (f"; {note}" if note else "")
        steps.add_row(
            step.number,
            step.label,
            "[green]ok[/]" if step.ok else "[red]FAILED[/]",
            f"{step.responded}/{step.sent}",
            str(len(step.calls)),
            f"{step.elapsed:.2f}s",
            note,
        )
    console.print(steps)

    routes = Table(title="REST calls by route", title_justify="left")
    routes.add_column("route")
    routes.add_column("calls", justify="right")
    for route, count in sorted(result.rest_calls.items(), key=lambda item: (-item[1], item[0])):
        routes.add_row(route, str(count))
    console.print(routes)

    if result.unknown_endpoints:
        unknown = Table(title="Unknown endpoints (answered 404)", title_justify="left")
        unknown.add_column("endpoint", style="yellow")
        unknown.add_column("calls", justify="right")
        counts: dict[str, int] = {}
        for endpoint in result.unknown_endpoints:
            counts[endpoint] = counts.get(endpoint, 0) + 1
        for endpoint, count in counts.items():
            unknown.add_row(endpoint, str(count))
        console.print(unknown)

    verdict = (
        "[green]all steps answered[/]"
        if result.ok
        else f"[red]{len(result.failures)} step(s) failed[/]"
    )
    console.print(
        f"{len(result.steps)} steps, {result.responses} responses, "
        f"{sum(result.rest_calls.values())} REST calls, {len(result.unknown_endpoints)} unknown, "
        f"{result.elapsed:.2f}s: {verdict}"
    )
