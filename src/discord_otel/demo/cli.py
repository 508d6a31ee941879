"""The ``discord-otel demo`` subcommand."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXPORT_CHOICES = ("auto", "otlp", "terminal")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the example bot against the simulator and show its telemetry live",
        description="Run the example bot against a local Discord simulator with steady, varied "
        "traffic (some commands fail, some hit a 429, some are slow) until interrupted, and "
        "show its traces, metrics and logs live in the terminal. When an OpenTelemetry "
        "Collector answers on the OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, default "
        "http://localhost:4318) the telemetry is exported there too.",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="stop after this many seconds and print the summary (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        default=4.0,
        metavar="PER_SECOND",
        help="user actions per second sent to the bot (default 4)",
    )
    parser.add_argument(
        "--export",
        choices=EXPORT_CHOICES,
        default="auto",
        help="auto: OTLP when a Collector answers, else the terminal only (default); "
        "otlp: always export over OTLP; terminal: never export",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="print plain snapshots instead of the live view (the default when stdout "
        "is not a terminal)",
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=5.0,
        metavar="SECONDS",
        help="seconds between two plain snapshots (default 5)",
    )
    parser.add_argument("--seed", type=int, help="seed of the traffic's randomness")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from discord_otel.demo.app import DemoOptions, main

    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        export=args.export,
        plain=args.plain or not sys.stdout.isatty(),
        interval=args.interval,
        seed=args.seed,
    )
    return main(options)
