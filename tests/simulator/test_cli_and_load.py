"""The simulate command end to end, and message floods."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from discord.ext import commands

from discord_otel.simulator import Scenario, Simulator

from .conftest import RunningBot, eventually, message_intents

ROOT = Path(__file__).resolve().parents[2]
DISCORD_OTEL = Path(sys.executable).with_name("discord-otel")


def test_simulate_runs_the_example_bot_through_the_tour() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    environment["COLUMNS"] = "160"
    completed = subprocess.run(
        [
            str(DISCORD_OTEL),
            "simulate",
            "--scenario",
            "examples/scenarios/tour.yaml",
            "--",
            sys.executable,
            "examples/bot.py",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "19 steps, 19 responses" in completed.stdout
    assert "all steps answered" in completed.stdout
    assert "POST /interactions/{webhook_id}/{webhook_token}/callback" in completed.stdout
    # The bot logged in with the generated token and shut down on SIGINT.
    assert "logged in as simulated-bot" in completed.stderr


def test_simulate_fails_when_the_bot_never_connects() -> None:
    completed = subprocess.run(
        [str(DISCORD_OTEL), "simulate", "--timeout", "2", "--", sys.executable, "-c", "pass"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "the bot did not connect" in completed.stderr


async def test_a_flood_reaches_the_bot_in_full(sim: Simulator, running: RunningBot) -> None:
    bot = commands.Bot(command_prefix="!", intents=message_intents())
    seen: list[str] = []

    @bot.listen()
    async def on_message(message: object) -> None:
        seen.append(getattr(message, "content", ""))

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    await running.start(bot)
    scenario = Scenario.from_dict(
        {
            "steps": [
                {"repeat": 3000, "steps": [{"message": "chatter", "wait": False}]},
                {"repeat": 20, "rate": 200, "steps": [{"message": "!ping"}]},
            ]
        }
    )
    result = await sim.run(scenario)

    flood, pings = result.steps
    assert flood.ok
    assert flood.sent == 3000
    assert flood.rate is not None
    assert pings.ok
    assert pings.responded == 20
    assert result.rest_calls["POST /channels/{channel_id}/messages"] == 20
    await eventually(lambda: seen.count("chatter") == 3000, timeout=30)


def test_serve_mode_prints_exports_a_bot_started_elsewhere_can_use() -> None:
    """Without a COMMAND the simulator serves until interrupted; a bot started in
    another shell with the printed exports runs the scenario against it."""
    server = subprocess.Popen(
        [str(DISCORD_OTEL), "simulate", "--scenario", "examples/scenarios/tour.yaml"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bot = None
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        for line in server.stdout:
            if line.strip().startswith("export "):
                name, _, value = line.strip()[len("export ") :].partition("=")
                exports[name] = value
            if "Ctrl+C stops" in line:
                break
        assert set(exports) >= {"DISCORD_OTEL_SIMULATOR_URL", "DISCORD_TOKEN", "PYTHONPATH"}
        environment = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
        environment.update(
            DISCORD_OTEL_SIMULATOR_URL=exports["DISCORD_OTEL_SIMULATOR_URL"],
            DISCORD_TOKEN=exports["DISCORD_TOKEN"],
            # the shell would expand ${PYTHONPATH:+...}; here there is none to keep
            PYTHONPATH=exports["PYTHONPATH"].split("$")[0],
        )
        bot = subprocess.Popen(
            [sys.executable, "examples/bot.py"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        summary = []
        for line in server.stdout:  # the scenario's summary, once the bot has run it
            summary.append(line)
            if "all steps answered" in line or "not answered" in line:
                break
        assert any("all steps answered" in line for line in summary), "".join(summary)
    finally:
        if bot is not None:
            bot.terminate()
            bot.wait(timeout=30)
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0
