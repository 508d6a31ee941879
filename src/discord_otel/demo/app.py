"""Running the demo: simulator, bot, traffic and screen on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live

from discord_otel.demo import telemetry as demo_telemetry
from discord_otel.demo.example import example_path, load_example
from discord_otel.demo.store import MetricSnapshot
from discord_otel.demo.telemetry import DemoTelemetry
from discord_otel.demo.traffic import Traffic
from discord_otel.demo.view import RATE_WINDOW, Frame, Summary, screen, summary

GUILDS = 3
READY_TIMEOUT = 30.0
TRACES_SHOWN = 2
LOGS_SHOWN = 6
PLAIN_WIDTH = 120


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None = None
    rate: float = 4.0
    export: str = "auto"
    plain: bool = False
    interval: float = 5.0
    seed: int | None = None


def main(options: DemoOptions) -> int:
    console = Console(width=PLAIN_WIDTH if not sys.stdout.isatty() else None)
    destination = demo_telemetry.choose_destination(options.export)
    # INFO and up from the bot and discord.py reach the OTLP handler (not the console).
    logging.getLogger().setLevel(logging.INFO)
    try:
        telemetry = demo_telemetry.setup(destination)
    except Exception as exc:
        console.print(f"discord-otel demo: cannot set up OpenTelemetry: {exc!r}", markup=False)
        return 1
    try:
        return asyncio.run(Demo(options, telemetry, console).run())
    except KeyboardInterrupt:  # a second Ctrl-C
        console.print("discord-otel demo: stopped without a summary")
        return 130


class Demo:
    def __init__(self, options: DemoOptions, telemetry: DemoTelemetry, console: Console) -> None:
        self.options = options
        self.telemetry = telemetry
        self.console = console
        self.started = time.monotonic()
        self.interrupted = False
        self.stop = asyncio.Event()

    def _on_signal(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.interrupted = True
        self.stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal)
        from discord_otel.simulator import Simulator

        self.console.print(f"discord-otel demo: starting {example_path()} against the simulator")
        module = load_example()
        traffic: Traffic | None = None
        async with Simulator(guilds=GUILDS) as sim:
            with sim.redirect():
                bot = module.ExampleBot()
                bot_task = asyncio.create_task(bot.start(sim.token))
                if not await self._wait_ready(sim, bot_task):
                    await self._close_bot(bot, bot_task)
                    self.telemetry.pipeline.shutdown()
                    return 1
                traffic = Traffic(sim, rate=self.options.rate, seed=self.options.seed)
                traffic_task = asyncio.create_task(traffic.run())
                try:
                    await self._show(traffic)
                finally:
                    traffic.stop()
                    await traffic_task
                    await traffic.drain()
                    await self._close_bot(bot, bot_task)
        self.telemetry.metrics.collect()
        last = self._frame(traffic, final=True)
        report = await asyncio.to_thread(self.telemetry.pipeline.shutdown)
        elapsed = time.monotonic() - self.started
        if self.options.plain:
            self._print_snapshot(last)
        self.console.print()
        self.console.print(
            summary(last, Summary(elapsed, self.interrupted, self._export_text(report)))
        )
        return 0

    async def _wait_ready(self, sim: Any, bot_task: asyncio.Task[None]) -> bool:
        ready = asyncio.create_task(sim.wait_ready(READY_TIMEOUT, commands=True))
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait({ready, bot_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if ready.done() and ready.exception() is None:
            return True
        ready.cancel()
        if bot_task.done() and bot_task.exception() is not None:
            reason = f"the bot failed: {bot_task.exception()!r}"
        elif self.stop.is_set():
            reason = "interrupted"
        else:
            reason = f"the bot did not connect within {READY_TIMEOUT:g}s"
        self.console.print(f"discord-otel demo: {reason}", markup=False)
        return False

    async def _close_bot(self, bot: Any, bot_task: asyncio.Task[None]) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bot.close(), 10)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(bot_task, 10)

    def _deadline_passed(self) -> bool:
        duration = self.options.duration
        return duration is not None and time.monotonic() - self.started >= duration

    async def _tick(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), 1.0)

    async def _show(self, traffic: Traffic) -> None:
        if self.options.plain:
            next_snapshot = time.monotonic() + self.options.interval
            while not self.stop.is_set() and not self._deadline_passed():
                await self._tick()
                self.telemetry.metrics.collect()
                if time.monotonic() >= next_snapshot and not self._deadline_passed():
                    next_snapshot += self.options.interval
                    self._print_snapshot(self._frame(traffic))
            return
        with Live(console=self.console, refresh_per_second=2, vertical_overflow="crop") as live:
            while not self.stop.is_set() and not self._deadline_passed():
                self.telemetry.metrics.collect()
                live.update(screen(self._frame(traffic), self.console.width))
                await self._tick()

    def _frame(self, traffic: Traffic, *, final: bool = False) -> Frame:
        metrics = self.telemetry.metrics
        now = metrics.latest or MetricSnapshot(at=time.monotonic())
        return Frame(
            elapsed=time.monotonic() - self.started,
            telemetry=self.telemetry,
            traffic=traffic.stats,
            now=now,
            before=metrics.ago(RATE_WINDOW),
            window_start=metrics.ago(metrics.window),
            traces=self.telemetry.spans.latest(TRACES_SHOWN, settle=0.0 if final else 0.3),
            logs=self.telemetry.logs.latest(LOGS_SHOWN),
            final=final,
        )

    def _print_snapshot(self, frame: Frame) -> None:
        self.console.rule(f"snapshot at {frame.elapsed:.0f} s")
        self.console.print(screen(frame, self.console.width))
        self.console.file.flush()

    def _export_text(self, report: Any) -> str:
        destination = self.telemetry.destination
        if not destination.otlp:
            return f"terminal only ({destination.reason})"
        counts = self.telemetry.pipeline.counts
        sent = ", ".join(f"{c.exported} {c.signal}" for c in counts.values())
        return f"OTLP to {destination.endpoint}: exported {sent}. {report.describe()}"
