"""A real discord.py bot, instrumented, against the simulator, with in-memory exporters.

The tracer provider is created once per session, a meter provider per
instrumentation (so cumulative points start at zero); both are passed to
``instrument()`` explicitly (the global providers are left alone). Each test gets a fresh
simulator and bot, and the exporter is cleared before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import discord
import pytest
from discord import app_commands, ui
from discord.ext import commands, tasks
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from discord_otel.config import DiscordOtelSettings
from discord_otel.instrumentation import DiscordInstrumentor
from discord_otel.simulator import Simulator


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = DiscordInstrumentor()

    def instrument(self, settings: DiscordOtelSettings | None = None) -> None:
        # a fresh meter provider per instrumentation: cumulative points start at zero
        self.meter_provider.shutdown()
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            settings=settings or DiscordOtelSettings(),
        )

    def uninstrument(self) -> None:
        if self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, (name, [s.name for s in self.spans()])
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, span.name
        for candidate in self.spans():
            if candidate.context.span_id == span.parent.span_id:
                return candidate
        raise AssertionError(f"parent of {span.name} not exported")

    def chain(self, span: ReadableSpan) -> list[str]:
        names = [span.name]
        while span.parent is not None:
            span = self.parent(span)
            names.append(span.name)
        return names

    async def settle(self, predicate: Any = None, timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (spans are exported when their task ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if predicate is None or predicate():
                await asyncio.sleep(0.05)
                return
            await asyncio.sleep(0.02)
        raise AssertionError("timed out waiting for telemetry")

    def metrics(self) -> dict[str, Any]:
        data = self.reader.get_metrics_data()
        found: dict[str, Any] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found


_telemetry = Telemetry()


def reinstrument(
    telemetry: Telemetry,
    provider: trace.TracerProvider,
    settings: DiscordOtelSettings | None = None,
) -> None:
    """The instrumentation again, tracing into ``provider``, with fresh metrics."""
    telemetry.uninstrument()
    telemetry.meter_provider.shutdown()
    telemetry.reader = InMemoryMetricReader()
    telemetry.meter_provider = MeterProvider(metric_readers=[telemetry.reader])
    telemetry.instrumentor.instrument(
        tracer_provider=provider,
        meter_provider=telemetry.meter_provider,
        settings=settings or DiscordOtelSettings(),
    )


async def finished_task(
    coroutine: Coroutine[Any, Any, Any], name: str | None = None, cancel_after: int | None = None
) -> tuple[asyncio.Task[Any], BaseException | None]:
    """Run ``coroutine`` as a task (cancelled after ``cancel_after`` loop steps, if
    given) until it is done: the task and its exception (None if it returned or
    was cancelled)."""
    task = asyncio.get_running_loop().create_task(coroutine, name=name)
    if cancel_after is not None:
        for _ in range(cancel_after):
            await asyncio.sleep(0)
        task.cancel()
    await asyncio.wait([task])
    return task, None if task.cancelled() else task.exception()


@pytest.fixture(params=["compiled", "python"])
def gateway_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which half the test's bot gets, the compiled one
    (``discord_otel._gateway_speedups``) or Python's: for its gateway parsers (built
    per connection), its listener runs (``_run_event``, ``_schedule_event``), its
    untraced commands and REST calls (``BotBase.invoke``, ``HTTPClient.request``), all
    but the first chosen as the instrumentation starts."""
    from discord_otel.instrumentation import gateway

    built = gateway._load_speedups()
    if request.param == "compiled" and built is None:
        pytest.skip("discord_otel._gateway_speedups is not built here")
    monkeypatch.setattr(gateway, "speedups", built if request.param == "compiled" else None)
    return str(request.param)


def every_event_dropped(telemetry: Telemetry) -> TracerProvider:
    """A tracer provider whose sampler drops every trace as its root begins (what
    a low ratio does to most events): nothing below a dropped event is traced."""
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(telemetry.exporter))
    return provider


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    _telemetry.uninstrument()
    _telemetry.exporter.clear()
    _telemetry.instrument()
    try:
        yield _telemetry
    finally:
        _telemetry.uninstrument()


# --- the bot under test ------------------------------------------------------------


class Behaviour:
    """What the bot's handlers saw, to compare instrumented and plain runs."""

    def __init__(self) -> None:
        self.command_errors: list[str] = []
        self.app_errors: list[str] = []
        self.view_errors: list[str] = []
        self.listener_errors: list[str] = []
        self.timeouts = 0
        self.user_spans: list[Any] = []
        self.task_runs = 0


class Confirm(ui.View):
    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(timeout=30)
        self.behaviour = behaviour

    @ui.button(label="Confirm", custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction, button: ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="confirmed")

    @ui.button(label="Explode", custom_id="explode")
    async def explode(self, interaction: discord.Interaction, button: ui.Button[Any]) -> None:
        raise RuntimeError("boom")

    @ui.select(
        custom_id="colour",
        options=[discord.SelectOption(label="red"), discord.SelectOption(label="blue")],
    )
    async def colour(self, interaction: discord.Interaction, select: ui.Select[Any]) -> None:
        await interaction.response.send_message(f"picked {select.values[0]}")

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: ui.Item[Any]
    ) -> None:
        self.behaviour.view_errors.append(type(error).__name__)
        await interaction.response.send_message("view failed")


class ShortView(ui.View):
    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(timeout=0.2)
        self.behaviour = behaviour

    @ui.button(label="Later", custom_id="later")
    async def later(self, interaction: discord.Interaction, button: ui.Button[Any]) -> None:
        await interaction.response.defer()

    async def on_timeout(self) -> None:
        self.behaviour.timeouts += 1


class Feedback(ui.Modal, title="Feedback"):
    answer: ui.TextInput[Any] = ui.TextInput(label="Answer", custom_id="answer")

    def __init__(self) -> None:
        super().__init__(custom_id="feedback")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.answer.value}")


class Counter(ui.DynamicItem[ui.Button[Any]], template=r"counter:(?P<count>[0-9]+)"):
    def __init__(self, count: int) -> None:
        super().__init__(ui.Button(label=str(count), custom_id=f"counter:{count}"))
        self.count = count

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> Counter:
        return cls(int(match["count"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"count {self.count + 1}")


class Tools(commands.Cog):
    def __init__(self, bot: commands.Bot, behaviour: Behaviour) -> None:
        self.bot = bot
        self.behaviour = behaviour

    @commands.hybrid_command(name="echo", description="Echo text")
    async def echo(self, ctx: commands.Context[Any], text: str) -> None:
        await ctx.send(text)

    @echo.autocomplete("text")
    async def echo_text(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"{current}ello", value=f"{current}ello")]


def make_bot(behaviour: Behaviour, tracer: trace.Tracer | None = None) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    bot = commands.Bot(
        command_prefix="!",
        intents=intents,
        help_command=None,
        chunk_guilds_at_startup=False,
        guild_ready_timeout=0.1,
    )

    @bot.command()
    async def ping(ctx: commands.Context[Any]) -> None:
        if tracer is not None:
            with tracer.start_as_current_span("user work") as span:
                behaviour.user_spans.append(span)
                await ctx.send("pong")
        else:
            await ctx.send("pong")

    @bot.command()
    @commands.check(lambda ctx: False)
    async def forbidden(ctx: commands.Context[Any]) -> None:
        await ctx.send("never")

    @bot.command()
    async def crash(ctx: commands.Context[Any]) -> None:
        raise ValueError("crash")

    @bot.command()
    async def buttons(ctx: commands.Context[Any]) -> None:
        await ctx.send("choose", view=Confirm(behaviour))

    @bot.command()
    async def short(ctx: commands.Context[Any]) -> None:
        await ctx.send("quick", view=ShortView(behaviour))

    @bot.command()
    async def counter(ctx: commands.Context[Any]) -> None:
        view = ui.View(timeout=None)
        view.add_item(Counter(1))
        await ctx.send("count", view=view)

    @bot.group(invoke_without_command=True)
    async def settings(ctx: commands.Context[Any]) -> None:
        await ctx.send("settings")

    @settings.command(name="show")
    async def settings_show(ctx: commands.Context[Any]) -> None:
        await ctx.send("shown")

    @bot.event
    async def on_command_error(ctx: commands.Context[Any], error: Exception) -> None:
        behaviour.command_errors.append(type(error).__name__)

    @bot.listen("on_message")
    async def failing_listener(message: discord.Message) -> None:
        if message.content == "listener-boom":
            raise KeyError("boom")

    @bot.event
    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        behaviour.listener_errors.append(event)

    config = app_commands.Group(name="config", description="Configuration")

    @config.command(name="set", description="Set a value")
    async def config_set(interaction: discord.Interaction, key: str, value: str) -> None:
        await interaction.response.send_message(f"{key}={value}")

    def deny(interaction: discord.Interaction) -> bool:
        raise app_commands.MissingPermissions(["administrator"])

    @config.command(name="deny", description="Always denied")
    @app_commands.check(deny)
    async def config_deny(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("denied?")

    bot.tree.add_command(config)

    @bot.tree.command(name="survey", description="Open a modal")
    async def survey(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    @bot.tree.command(name="panel", description="Buttons")
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("panel", view=Confirm(behaviour))

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"inspected {member.name}", ephemeral=True)

    @bot.tree.context_menu(name="Quote")
    async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"quoted {message.id}")

    @bot.tree.error
    async def on_app_command_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        behaviour.app_errors.append(type(error).__name__)
        if not interaction.response.is_done():
            await interaction.response.send_message("app command failed")

    @tasks.loop(seconds=0.05, count=2)
    async def heartbeat() -> None:
        behaviour.task_runs += 1

    @bot.listen("on_ready")
    async def start_heartbeat() -> None:
        if not heartbeat.is_running():
            heartbeat.start()

    async def setup_hook() -> None:
        await bot.add_cog(Tools(bot, behaviour))
        bot.add_dynamic_items(Counter)
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    bot.heartbeat = heartbeat  # type: ignore[attr-defined]
    return bot


class Harness:
    def __init__(self, sim: Simulator, bot: commands.Bot, behaviour: Behaviour) -> None:
        self.sim = sim
        self.bot = bot
        self.behaviour = behaviour


@contextlib.asynccontextmanager
async def running_bot(tracer: trace.Tracer | None = None) -> AsyncIterator[Harness]:
    behaviour = Behaviour()
    async with Simulator() as sim:
        with sim.redirect():
            bot = make_bot(behaviour, tracer)
            task = asyncio.create_task(bot.start(sim.token))
            try:
                await sim.wait_ready(timeout=15, commands=True)
                yield Harness(sim, bot, behaviour)
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)


@pytest.fixture
async def harness(telemetry: Telemetry) -> AsyncIterator[Harness]:
    tracer = telemetry.tracer_provider.get_tracer("tests")
    async with running_bot(tracer) as running:
        yield running
