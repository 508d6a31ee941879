"""The console script, as a user runs it: a real subprocess of the installed entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys

from discord_otel import __version__


def _discord_otel() -> list[str]:
    script = shutil.which("discord-otel")
    return [script] if script else [sys.executable, "-m", "discord_otel"]


def test_version_prints_the_package_version() -> None:
    result = subprocess.run([*_discord_otel(), "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"discord-otel {__version__}"


def test_help_lists_usage() -> None:
    result = subprocess.run([*_discord_otel(), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "usage: discord-otel" in result.stdout


def test_no_command_prints_help_and_fails() -> None:
    result = subprocess.run(_discord_otel(), capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: discord-otel" in result.stderr
