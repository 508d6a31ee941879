"""Injected faults, unknown endpoints and bad scenario files."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest
from discord.ext import commands
from rich.console import Console

from discord_otel.cli import main as cli_main
from discord_otel.simulator import Scenario, ScenarioError, Simulator
from discord_otel.simulator.summary import print_summary

from .conftest import RunningBot, message_intents

MESSAGES = "/channels/{channel_id}/messages"


def echo_bot() -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=message_intents())

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    @bot.command()
    async def bans(ctx: commands.Context[commands.Bot]) -> None:
        assert ctx.guild is not None
        try:
            [entry async for entry in ctx.guild.bans()]
        except discord.NotFound:
            await ctx.send("no bans endpoint here")

    return bot


@pytest.mark.parametrize("scope", ["bucket", "global", "shared"])
async def test_a_429_is_retried_by_the_bot_and_then_succeeds(
    sim: Simulator, running: RunningBot, scope: str
) -> None:
    await running.start(echo_bot())
    sim.faults.add_ratelimit(f"POST {MESSAGES}", scope=scope, retry_after=0.1, times=1)

    calls = await sim.send_message("!ping")

    assert [c.status for c in calls] == [429, 200]
    limited = calls[0]
    assert limited.response is None
    assert limited.headers["X-RateLimit-Scope"] == {"bucket": "user"}.get(scope, scope)
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert ("X-RateLimit-Global" in limited.headers) == (scope == "global")
    assert calls[1].json["content"] == "pong"


async def test_server_errors_and_slow_responses(sim: Simulator, running: RunningBot) -> None:
    await running.start(echo_bot())
    sim.faults.add_server_error(f"POST {MESSAGES}", status=502, times=1)
    delay = sim.faults.add_delay(f"POST {MESSAGES}", 0.2, times=1)

    calls = await sim.send_message("!ping")

    assert [c.status for c in calls] == [502, 200]
    assert delay.fired == 1


async def test_unknown_endpoints_answer_404_and_are_listed(
    sim: Simulator, running: RunningBot
) -> None:
    await running.start(echo_bot())
    result = await sim.run(Scenario.from_dict({"steps": [{"message": "!bans"}]}))

    assert result.ok
    assert result.unknown_endpoints == ["GET /guilds/{id}/bans"]
    (call,) = [c for c in sim.rest_log if not c.known]
    assert call.status == 404
    assert sim.rest_log[-1].json["content"] == "no bans endpoint here"
    console = Console(record=True, width=120)
    print_summary(result, console)
    assert "GET /guilds/{id}/bans" in console.export_text()


async def test_a_scenario_with_faults_runs_with_them(sim: Simulator, running: RunningBot) -> None:
    await running.start(echo_bot())
    scenario = Scenario.from_dict(
        {
            "faults": [{"ratelimit": f"POST {MESSAGES}", "retry_after": 0.05, "times": 2}],
            "steps": [{"message": "!ping"}, {"message": "!ping"}, {"message": "!ping"}],
        }
    )
    result = await sim.run(scenario)
    assert result.ok
    assert [[c.status for c in step.calls] for step in result.steps] == [
        [429, 429, 200],
        [200],
        [200],
    ]


BAD_SCENARIOS = [
    ("steps: [{message: '!ping'}, {slash: 'echo', options: [1]}]", "step 2 (slash)", "'options'"),
    ("steps: [{mesage: hi}]", "step 1", "expected exactly one of"),
    ("steps: [{repeat: 3, steps: [{click: ''}]}]", "step 1.1 (click)", "non-empty string"),
    ("steps: [{message: hi, timeout: -1}]", "step 1 (message) timeout", "seconds"),
    ("steps: [{message: hi, guild: 3}]", "step 1 (message)", "guild index"),
    ("faults: [{ratelimit: 'POST /x', scope: planet}]\nsteps: [{message: hi}]", "fault 1", "scope"),
    ("steps: [{message: hi}", "file", "not valid YAML"),
    ("guilds: 2", "steps", "non-empty list"),
]


@pytest.mark.parametrize(("text", "where", "problem"), BAD_SCENARIOS)
def test_a_bad_scenario_names_the_file_the_step_and_the_problem(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        Scenario.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}")
    assert problem in message


def test_the_cli_rejects_a_bad_scenario_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"steps": [{"select": "colour"}]}')
    code = cli_main(["simulate", "--scenario", str(path), "--", "false"])
    assert code == 2
    error = capsys.readouterr().err
    assert f"{path}: step 1 (select): 'values' must be a non-empty list" in error
