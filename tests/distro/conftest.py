"""Helpers for the distro tests: run a bot as a real process against the receiver."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BOTS = Path(__file__).parent / "bots"
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


def c_compiler_found() -> bool:
    """Whether the build hook (hatch_build.py) finds the compiler it would use."""
    from hatch_build import compiler_command

    command = compiler_command()
    return bool(command) and shutil.which(command[0]) is not None


@dataclass
class BotRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def stats(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"no stats from the bot:\n{self.stdout}\n{self.stderr}"
        return json.loads(lines[-1])  # type: ignore[no-any-return]


def bot_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "DISCORD_OTEL_")) and key != "PYTHONPATH"
    }
    env.update(
        {
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "OTEL_SERVICE_NAME": "distro-test-bot",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def run_bot(
    script: str, env: dict[str, str], *, timeout: float = 60, wrapper: list[str] | None = None
) -> BotRun:
    command = [*(wrapper or []), sys.executable, str(BOTS / script)]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    return BotRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def token() -> str:
    return DISCORD_TOKEN
