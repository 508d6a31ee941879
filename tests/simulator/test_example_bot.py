"""examples/bot.py, unmodified, run through examples/scenarios/tour.yaml."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from discord_otel.simulator import Scenario, Simulator

from .conftest import RunningBot, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MESSAGES = "/channels/{channel_id}/messages"
CALLBACK = "/interactions/{webhook_id}/{webhook_token}/callback"
FOLLOWUP = "/webhooks/{webhook_id}/{webhook_token}"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sent_content(calls: list[Any]) -> list[str]:
    """What the bot said, in messages and interaction responses."""
    said = []
    for call in calls:
        body = call.json if isinstance(call.json, dict) else {}
        if call.route == CALLBACK:
            body = body.get("data") or {}
        if isinstance(body.get("content"), str):
            said.append(body["content"])
    return said


async def test_tour_exercises_every_feature_of_the_example_bot(
    sim: Simulator, running: RunningBot
) -> None:
    bot = load_example("bot").ExampleBot()
    await running.start(bot, commands=True)

    result = await sim.run(Scenario.load(EXAMPLES / "scenarios" / "tour.yaml"))

    assert [s.error for s in result.steps if not s.ok] == []
    assert result.ok
    by_label = {step.label: step for step in result.steps}

    # The listener saw every user message and reacted to the greeting.
    assert bot.messages_seen == 7
    assert by_label["message hello everyone"].calls[0].route.endswith("/reactions/{emoji}/@me")
    # Without ANNOUNCE_WEBHOOK_URL the announce command says so.
    assert sent_content(by_label["message !announce hello"].calls) == [
        "No announcement webhook is configured."
    ]
    # Prefix and hybrid commands, both ways.
    assert sent_content(by_label["message !ping"].calls)[0].startswith("pong")
    assert sent_content(by_label["message !roll 20"].calls)[0].endswith("(d20).")
    assert sent_content(by_label["slash roll"].calls)[0].endswith("(d12).")
    assert sent_content(by_label["slash echo"].calls) == ["hi there"]
    # Autocomplete answered with the matching choices.
    (choices,) = [c.json for c in by_label["autocomplete echo"].calls]
    assert choices["type"] == 8
    assert [c["value"] for c in choices["data"]["choices"]] == ["hello", "hey", "hi", "howdy"]
    assert sent_content(by_label["slash config set"].calls) == ["Set colour to red."]
    assert "joined on" in sent_content(by_label["user_command Inspect"].calls)[0]
    # Quote targets the bot's last message, the ephemeral "Set colour..." reply.
    assert sent_content(by_label["message_command Quote"].calls)[0].startswith("> ")
    # The view's button and select, then the modal.
    assert sent_content(by_label["click confirm"].calls) == ["Confirmed!"]
    assert sent_content(by_label["select colour"].calls) == ["You picked red."]
    assert by_label["slash feedback"].calls[0].json["type"] == 9
    assert sent_content(by_label["submit feedback"].calls) == ["Thanks for your feedback: yes"]
    # Error paths answer too.
    assert sent_content(by_label["message !fail"].calls) == ["Something went wrong, sorry."]
    assert sent_content(by_label["message !admin"].calls) == ["You are not allowed to do that."]
    # The slow slash command deferred, and its follow-up came later.
    assert by_label["slash slow"].calls[0].json["type"] == 5
    await eventually(
        lambda: (
            "Done, that took a while."
            in sent_content([c for c in sim.rest_log if c.route == FOLLOWUP])
        ),
        timeout=5,
    )
    # The tasks.loop ran, and the summary counts calls by route.
    assert bot.heartbeats >= 1
    assert result.rest_calls[f"POST {CALLBACK}"] >= 10
    assert result.unknown_endpoints == []
