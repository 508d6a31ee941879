"""Every discord-otel setting: good values are used, bad ones warn once and fall back."""

from __future__ import annotations

import logging

import pytest

from discord_otel.config import ALL_SETTINGS, DiscordOtelSettings

GOOD_AND_BAD = {
    "OTEL_PYTHON_DISCORD_UNTRACED_EVENTS": ("presence_update, GUILD_UPDATE", "MESSAGE-CREATE"),
    "OTEL_PYTHON_DISCORD_CAPTURE_USER_ID": ("true", "maybe"),
    "OTEL_PYTHON_DISCORD_CAPTURE_MESSAGE_CONTENT": ("yes", "2"),
    "OTEL_PYTHON_DISCORD_CAPTURE_COMMAND_OPTIONS": ("1", "enabled"),
    "OTEL_PYTHON_DISCORD_CAPTURE_SQL_PARAMETERS": ("on", "sure"),
    "OTEL_PYTHON_DISCORD_EVENT_LOOP_LAG_INTERVAL": ("0.5", "-1"),
    "OTEL_PYTHON_DISCORD_SYSTEM_METRICS": ("all", "everything"),
    "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS": ("0.0.0.0:9464", "localhost:http"),
    "OTEL_PYTHON_DISCORD_HEALTH_ADDRESS": (":8080", "127.0.0.1:99999"),
    "OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT": ("2", "soon"),
    "OTEL_PYTHON_DISCORD_GC_FREEZE": ("false", "frozen"),
    "OTEL_PYTHON_DISCORD_COMPILED": ("no", "fast"),
}


def test_every_setting_has_a_case() -> None:
    assert {setting.name for setting in ALL_SETTINGS} == set(GOOD_AND_BAD)


def test_defaults_without_environment() -> None:
    settings = DiscordOtelSettings.from_environ({})
    assert settings == DiscordOtelSettings()
    assert "PRESENCE_UPDATE" in settings.untraced_events
    assert settings.capture_user_id is False
    assert settings.prometheus_address is None


@pytest.mark.parametrize("setting", ALL_SETTINGS, ids=lambda s: s.name)
def test_good_value_is_used(setting) -> None:  # type: ignore[no-untyped-def]
    good, _ = GOOD_AND_BAD[setting.name]
    value = setting.read({setting.name: good})
    assert value != setting.default


@pytest.mark.parametrize("setting", ALL_SETTINGS, ids=lambda s: s.name)
def test_bad_value_warns_once_and_uses_default(setting, caplog) -> None:  # type: ignore[no-untyped-def]
    _, bad = GOOD_AND_BAD[setting.name]
    with caplog.at_level(logging.WARNING, logger="discord_otel.config"):
        value = setting.read({setting.name: bad})
    assert value == setting.default
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert setting.name in message
    assert repr(bad) in message
    assert "default" in message


def test_parsed_values() -> None:
    settings = DiscordOtelSettings.from_environ(
        {
            "OTEL_PYTHON_DISCORD_UNTRACED_EVENTS": "presence_update, GUILD_UPDATE",
            "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS": "9464",
            "OTEL_PYTHON_DISCORD_HEALTH_ADDRESS": "0.0.0.0:8080",
        }
    )
    assert settings.untraced_events == {"PRESENCE_UPDATE", "GUILD_UPDATE"}
    assert settings.prometheus_address == ("127.0.0.1", 9464)
    assert settings.health_address == ("0.0.0.0", 8080)
