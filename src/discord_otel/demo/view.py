"""The demo's screen: rich renderables for the live view and the plain snapshots,
and the closing summary.

Everything that comes from the bot (span names, routes, log lines) is put in
:class:`rich.text.Text`, never parsed as rich markup.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from discord_otel.demo.store import (
    HistogramSeries,
    LogLine,
    MetricSnapshot,
    SpanRecord,
    TraceRecord,
)
from discord_otel.demo.telemetry import DemoTelemetry
from discord_otel.demo.traffic import TrafficStats

RATE_WINDOW = 5.0
SIDE_BY_SIDE_WIDTH = 150
GRAFANA_URL = "http://127.0.0.1:3000"


@dataclass
class Frame:
    """Everything one screen shows."""

    elapsed: float
    telemetry: DemoTelemetry
    traffic: TrafficStats
    now: MetricSnapshot
    before: MetricSnapshot | None  # RATE_WINDOW ago, for rates
    window_start: MetricSnapshot | None  # the start of the percentile window
    traces: list[TraceRecord]
    logs: list[LogLine]
    final: bool = False


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _percentiles(series: HistogramSeries) -> str:
    return " / ".join(_ms(series.quantile(q)) for q in (0.5, 0.95, 0.99))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def header(frame: Frame) -> Text:
    destination = frame.telemetry.destination
    text = Text()
    text.append("discord-otel demo", style="bold")
    text.append(f"  {_clock(frame.elapsed)}  ", style="dim")
    text.append("examples/bot.py against the local Discord simulator")
    text.append("\n")
    if destination.otlp:
        text.append(
            f"Exporting over OTLP ({destination.protocol}) to {destination.endpoint}", "green"
        )
        text.append(f" ({destination.reason}); in Grafana ({GRAFANA_URL}): Dashboards -> ")
        text.append("Discord bot -> Overview, service discord-otel-demo.")
    else:
        text.append("Telemetry shown here only", style="yellow")
        text.append(f": {destination.reason}. ")
        text.append("Start the Grafana stack (docker compose -f docker-compose.otel.yml up -d) ")
        text.append("to export there too.")
    if not frame.final:
        text.append("\nCtrl-C stops and prints a summary.", style="dim")
    return text


def commands_table(frame: Frame) -> Table:
    now, before = frame.now, frame.before
    span = now.at - before.at if before is not None and now.at > before.at else 0.0
    total = now.command_total
    errors = now.command_error_total

    def rate(current: int, earlier: int) -> str:
        return f"{(current - earlier) / span:.1f}/s" if span > 0 else "-"

    table = Table(
        title="Commands", title_justify="left", show_header=False, box=box.SIMPLE, expand=False
    )
    table.add_column("what", style="dim")
    table.add_column("value", justify="right")
    table.add_row("commands per second", rate(total, before.command_total if before else 0))
    table.add_row("commands (total)", str(total))
    ratio = f" ({errors / total:.0%})" if total else ""
    table.add_row("errors", Text(f"{errors}{ratio}", style="red" if errors else ""))
    for error_type, count in now.command_errors.most_common(3):
        table.add_row(Text(f"  {error_type}"), str(count))
    window = now.command_latency.minus(
        frame.window_start.command_latency if frame.window_start else None
    )
    table.add_row("latency p50 / p95 / p99", _percentiles(window))
    ack = now.ack_latency.minus(frame.window_start.ack_latency if frame.window_start else None)
    table.add_row("interaction ack p95", _ms(ack.quantile(0.95)))
    events = sum(now.gateway_events.values())
    earlier_events = sum(before.gateway_events.values()) if before else 0
    table.add_row("gateway events/s", rate(events, earlier_events))
    table.add_row("components and modals", str(now.components))
    table.add_row("event loop lag", _ms(now.loop_lag))
    return table


def rest_table(frame: Frame, limit: int = 8, width: int = 160) -> Table:
    now = frame.now
    table = Table(title="Discord REST calls by route", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column(
        "route", no_wrap=True, overflow="ellipsis", max_width=max(20, min(72, width - 36))
    )
    table.add_column("calls", justify="right", no_wrap=True, min_width=5)
    table.add_column("429s", justify="right", no_wrap=True, min_width=4)
    table.add_column("errors", justify="right", no_wrap=True, min_width=6)
    table.add_column("p95", justify="right", no_wrap=True, min_width=7)
    limited: dict[str, int] = {}
    for key, count in now.ratelimits.items():
        template = key.rsplit(" ", 1)[0] if " " in key else key
        limited[template] = limited.get(template, 0) + count
    for route, count in now.rest_calls.most_common(limit):
        template = route.split(" ", 1)[1] if " " in route else route
        series = now.rest_latency.get(route, HistogramSeries())
        errors = now.rest_errors.get(route, 0)
        table.add_row(
            Text(route),
            str(count),
            str(limited.pop(template, 0) or ""),
            Text(str(errors or ""), style="red" if errors else ""),
            _ms(series.quantile(0.95)),
        )
    if not now.rest_calls:
        table.add_row(Text("(no REST call recorded yet)", style="dim"), "", "", "", "")
    return table


def _span_label(span: SpanRecord) -> Text:
    label = Text(span.name, style="red" if span.error_type else "")
    label.append(f"  {span.duration_ms:.1f} ms", style="dim")
    if span.error_type:
        label.append(f"  x {span.error_type}", style="red")
    return label


def trace_tree(trace: TraceRecord) -> Tree:
    roots, children = trace.children()
    tree = Tree(Text(f"trace {trace.trace_id:032x}", style="cyan"))

    def add(node: Tree, span: SpanRecord, depth: int) -> None:
        branch = node.add(_span_label(span))
        if depth < 8:
            for child in children.get(span.span_id, []):
                add(branch, child, depth + 1)

    for root in roots:
        add(tree, root, 0)
    return tree


def traces_panel(frame: Frame) -> RenderableType:
    if not frame.traces:
        body: RenderableType = Text("(no finished trace yet)", style="dim")
    else:
        body = Group(*(trace_tree(t) for t in frame.traces))
    return Panel(body, title="Latest traces (span tree, durations)", title_align="left")


def logs_table(frame: Frame) -> Table:
    table = Table(title="Recent logs", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("time", style="dim", no_wrap=True, min_width=8)
    table.add_column("level", no_wrap=True, min_width=5)
    table.add_column("message", no_wrap=True, overflow="ellipsis", max_width=60)
    table.add_column("trace id", style="cyan", no_wrap=True, min_width=32)
    for line in frame.logs:
        moment = datetime.datetime.fromtimestamp(line.at).strftime("%H:%M:%S")
        level_style = "red" if line.level in ("ERROR", "CRITICAL") else ""
        if line.level == "WARN" or line.level == "WARNING":
            level_style = "yellow"
        body = " ".join(line.body.split())
        table.add_row(
            moment,
            Text(line.level, style=level_style),
            Text(body),
            f"{line.trace_id:032x}" if line.trace_id else "-",
        )
    if not frame.logs:
        table.add_row("", "", Text("(no log record yet)", style="dim"), "")
    return table


def traffic_line(frame: Frame) -> Text:
    stats = frame.traffic
    telemetry = frame.telemetry
    text = Text("Traffic: ", style="bold")
    text.append(f"{stats.total} user actions sent, ")
    text.append(f"{sum(stats.faults.values())} faults injected (")
    text.append(", ".join(f"{n} {label}" for label, n in stats.faults.most_common()) or "none")
    text.append(").  Telemetry: ")
    text.append(f"{telemetry.spans.spans} spans in {len(telemetry.spans.trace_ids)} traces, ")
    text.append(f"{telemetry.logs.records} log records, ")
    text.append(f"{len(frame.now.instruments)} instruments.")
    return text


def screen(frame: Frame, width: int = 160) -> Group:
    """The whole screen; the two tables side by side when ``width`` allows."""
    if width >= SIDE_BY_SIDE_WIDTH:
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column()
        grid.add_row(commands_table(frame), rest_table(frame, width=width - 56))
        tables: list[RenderableType] = [grid]
    else:
        tables = [commands_table(frame), rest_table(frame, width=width)]
    return Group(
        header(frame), traffic_line(frame), *tables, traces_panel(frame), logs_table(frame)
    )


@dataclass
class Summary:
    elapsed: float
    interrupted: bool
    shutdown: str


def summary(frame: Frame, result: Summary) -> Group:
    """The closing summary, printed after the bot stopped."""
    now = frame.now
    total = now.command_total
    errors = now.command_error_total
    stats = frame.traffic
    telemetry = frame.telemetry
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    how = "interrupted" if result.interrupted else "finished"
    lines.add_row("ran", f"{result.elapsed:.1f} s ({how})")
    lines.add_row(
        "traffic",
        f"{stats.total} user actions, {sum(stats.faults.values())} faults injected, "
        f"{stats.no_reaction} without a reaction in time",
    )
    ratio = f" ({errors / total:.0%})" if total else ""
    lines.add_row("commands", f"{total}, {errors} errors{ratio}")
    if now.command_errors:
        lines.add_row(
            "errors by type",
            Text(", ".join(f"{name} {n}" for name, n in now.command_errors.most_common())),
        )
    lines.add_row("latency p50 / p95 / p99", _percentiles(now.command_latency))
    lines.add_row(
        "REST calls",
        f"{sum(now.rest_calls.values())} on {len(now.rest_calls)} routes, "
        f"{sum(now.ratelimits.values())} rate limited (429)",
    )
    lines.add_row(
        "telemetry",
        f"{telemetry.spans.spans} spans in {len(telemetry.spans.trace_ids)} traces "
        f"({telemetry.spans.error_spans} with an error), {telemetry.logs.records} log records "
        f"({telemetry.logs.with_trace_id} with a trace id), {len(now.instruments)} instruments",
    )
    lines.add_row("export", Text(result.shutdown))
    return Group(Text("Summary", style="bold underline"), lines, rest_table(frame, limit=20))
