"""discord-otel doctor: effective configuration with secrets masked, endpoint checks."""

from __future__ import annotations

import subprocess

import pytest

from tests.distro.conftest import REPO, VENV_BIN, bot_env
from tests.fixtures.otlp_receiver import OtlpReceiver

SECRET = "Bearer super-secret-header-value"


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "discord-otel"), "doctor", "--timeout", "1"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_doctor_reachable(otlp_receiver: OtlpReceiver, protocol: str) -> None:
    env = bot_env(
        {
            **otlp_receiver.env(protocol),
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization={SECRET}",
            "OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT": "soon",
        }
    )
    done = _doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "authorization=***" in out
    assert "super-secret" not in out + done.stderr
    assert "OTEL_METRICS_EXEMPLAR_FILTER" in out  # a discord-otel default, shown
    assert "trace_based" in out
    assert "OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT" in out
    assert "ignored 'soon'" in out
    assert out.count("reachable") == 3
    assert "unreachable" not in out


@pytest.mark.parametrize("mode", ["refusing", "blackhole"])
def test_doctor_unreachable(otlp_receiver: OtlpReceiver, mode: str) -> None:
    otlp_receiver.set_mode(mode)
    done = _doctor(bot_env(otlp_receiver.env()))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("unreachable") == 3


def test_doctor_masks_token_variables() -> None:
    from discord_otel.doctor import mask

    assert mask("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=1,b=2") == "a=***,b=***"
    assert mask("OTEL_SOMETHING_TOKEN", "abc") == "***"
    assert mask("OTEL_SERVICE_NAME", "bot") == "bot"
