"""``discord-otel doctor``: the effective configuration, and whether the Collector answers.

Prints every ``OTEL_*`` and ``OTEL_PYTHON_DISCORD_*`` setting as the bot would
see it under ``opentelemetry-instrument`` (discord-otel's defaults filled in,
secrets masked), then sends an empty export to each OTLP endpoint in use.
Exit status 0 when every endpoint answered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from discord_otel.config import ALL_SETTINGS

SIGNALS = ("traces", "metrics", "logs")
SECRET_MARKERS = ("HEADERS", "TOKEN", "KEY", "SECRET", "PASSWORD", "AUTH", "CREDENTIAL")
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}


def mask(name: str, value: str) -> str:
    """``value`` with secrets hidden: header values, tokens, keys."""
    upper = name.upper()
    if not any(marker in upper for marker in SECRET_MARKERS):
        return value
    if "HEADERS" in upper:
        pairs = [part.partition("=") for part in value.split(",") if part.strip()]
        return ",".join(f"{key.strip()}=***" for key, _, _ in pairs)
    return "***" if value else value


def effective_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    from discord_otel.distro import apply_defaults

    env = dict(os.environ if environ is None else environ)
    apply_defaults(env)
    return env


@dataclass(frozen=True)
class Endpoint:
    signal: str
    protocol: str
    url: str


def endpoints(env: Mapping[str, str]) -> list[Endpoint]:
    """The OTLP endpoints the exporters would use, one per exported signal."""
    found = []
    for signal in SIGNALS:
        exporters = env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
        if not any(e.strip().startswith("otlp") for e in exporters.split(",")):
            continue
        protocol = (
            env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINTS.get(
            protocol, DEFAULT_ENDPOINTS["http/protobuf"]
        )
        if specific:
            url = specific
        elif protocol == "grpc":
            url = base
        else:
            url = base.rstrip("/") + f"/v1/{signal}"
        found.append(Endpoint(signal, protocol, url))
    return found


def check(endpoint: Endpoint, timeout: float) -> tuple[bool, str]:
    """Send an empty export (HTTP) or open a channel (gRPC); (ok, what happened)."""
    started = time.monotonic()
    try:
        if endpoint.protocol == "grpc":
            import grpc  # type: ignore[import-untyped]

            parsed = urlparse(endpoint.url if "://" in endpoint.url else f"http://{endpoint.url}")
            target = parsed.netloc or parsed.path
            channel = (
                grpc.insecure_channel(target)
                if parsed.scheme != "https"
                else grpc.secure_channel(target, grpc.ssl_channel_credentials())
            )
            try:
                grpc.channel_ready_future(channel).result(timeout=timeout)
            finally:
                channel.close()
            detail = "gRPC channel ready"
        else:
            request = urllib.request.Request(
                endpoint.url,
                data=b"",
                method="POST",
                headers={"Content-Type": "application/x-protobuf"},
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                detail = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code} {exc.reason}"
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        if isinstance(exc, (socket.timeout, TimeoutError)) or "Timeout" in type(exc).__name__:
            reason = f"no answer within {timeout:g}s"
        return False, str(reason)
    return True, f"{detail} in {(time.monotonic() - started) * 1000:.0f} ms"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    env = effective_environment()

    table = Table(title="OpenTelemetry settings (standard OTEL_* variables)")
    table.add_column("variable")
    table.add_column("value")
    table.add_column("source")
    for name in sorted(
        k for k in env if k.startswith("OTEL_") and not k.startswith("OTEL_PYTHON_DISCORD_")
    ):
        source = "environment" if name in os.environ else "discord-otel default"
        table.add_row(name, mask(name, env[name]), source)
    console.print(table)

    ours = Table(title="discord-otel settings (OTEL_PYTHON_DISCORD_*)")
    ours.add_column("variable")
    ours.add_column("effective value")
    ours.add_column("source")
    for setting in ALL_SETTINGS:
        raw = os.environ.get(setting.name)
        value = setting.read(os.environ)
        if raw is None or not raw.strip():
            source = "default"
        elif value == setting.default and raw.strip():
            source = f"default (ignored {mask(setting.name, raw)!r})"
        else:
            source = "environment"
        if isinstance(value, frozenset):
            shown = ",".join(sorted(value)) or "(none)"
        elif isinstance(value, tuple):
            shown = f"{value[0]}:{value[1]}"
        else:
            shown = "(off)" if value is None else str(value)
        ours.add_row(setting.name, shown, source)
    console.print(ours)

    checks = Table(title="OTLP endpoints")
    checks.add_column("signal")
    checks.add_column("protocol")
    checks.add_column("endpoint")
    checks.add_column("result")
    all_ok = True
    found = endpoints(env)
    for endpoint in found:
        ok, detail = check(endpoint, args.timeout)
        all_ok &= ok
        checks.add_row(
            endpoint.signal,
            endpoint.protocol,
            endpoint.url,
            f"[green]reachable[/green] ({detail})" if ok else f"[red]unreachable[/red] ({detail})",
        )
    if found:
        console.print(checks)
    else:
        console.print("No signal is exported over OTLP.")
    return 0 if all_ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "doctor",
        help="print the effective configuration and check the OTLP endpoints",
        description="Print the effective OpenTelemetry and discord-otel configuration "
        "(secrets masked) and check that the OTLP endpoints answer.",
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to wait for each endpoint"
    )
    parser.set_defaults(handler=run)
