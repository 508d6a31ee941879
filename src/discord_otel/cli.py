"""The ``discord-otel`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds its parser and sets ``handler`` (a callable taking the parsed arguments and
returning an exit code). Modules are imported only when listed here, so the
command starts fast and one broken subcommand cannot take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from discord_otel.version import __version__

# Modules that provide subcommands, in the order --help lists them.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "discord_otel.simulator.cli",
    "discord_otel.demo.cli",
    "discord_otel.doctor",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discord-otel",
        description="OpenTelemetry for discord.py bots: traces, metrics and logs, "
        "a local Discord simulator, and a demo.",
    )
    parser.add_argument("--version", action="version", version=f"discord-otel {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)
