"""``discord-otel simulate``: run a bot against the local simulator.

With a COMMAND the bot runs as a child whose discord.py is redirected to the
simulator (a ``sitecustomize`` on its PYTHONPATH, or the
``opentelemetry_pre_instrument`` entry point under ``opentelemetry-instrument``);
the scenario runs once it is READY, then the child gets SIGINT so it can shut
down and flush its telemetry. Without a COMMAND the simulator serves until
interrupted and prints what to export for a bot started elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from discord_otel import environment_variables as env

SITECUSTOMIZE_DIR = Path(__file__).resolve().parent / "_sitecustomize"
# How long the bot gets to shut down (and flush telemetry) after SIGINT, then after SIGTERM.
INTERRUPT_GRACE = 20.0
TERMINATE_GRACE = 5.0
# Exit statuses of a bot that stopped on SIGINT: handled, or the interpreter's default.
CLEAN_EXITS = (0, -signal.SIGINT, 128 + signal.SIGINT)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a bot against a local Discord simulator",
        description="Run a discord.py bot against a local fake Discord (no token needed), "
        "optionally through a scenario, and print a summary.",
    )
    parser.add_argument("--scenario", metavar="FILE", help="a YAML or JSON scenario to run")
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    parser.add_argument(
        "--shards", type=int, default=1, help="shards /gateway/bot recommends (default 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the bot to connect (default 30)",
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- the command that runs the bot"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from discord_otel.simulator.scenario import Scenario, ScenarioError

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    scenario = None
    if args.scenario:
        try:
            scenario = Scenario.load(args.scenario)
        except ScenarioError as exc:
            print(f"discord-otel simulate: {exc}", file=sys.stderr)
            return 2
    if args.shards < 1 or not 0 <= args.port <= 65535 or args.timeout <= 0:
        print(
            "discord-otel simulate: --shards, --port and --timeout must be positive",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_simulate(args, scenario, command))
    except KeyboardInterrupt:
        return 130


def child_environment(url: str, token: str) -> dict[str, str]:
    """The child's environment: the simulator's URL, a token, and the redirecting sitecustomize."""
    environment = dict(os.environ)
    environment[env.DISCORD_OTEL_SIMULATOR_URL] = url
    environment.setdefault("DISCORD_TOKEN", token)
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = str(SITECUSTOMIZE_DIR) + (os.pathsep + path if path else "")
    return environment


async def _simulate(args: argparse.Namespace, scenario: Any, command: list[str]) -> int:
    from discord_otel.simulator.server import Simulator

    guilds = scenario.guilds if scenario is not None else 1
    async with Simulator(shards=args.shards, guilds=guilds, port=args.port) as sim:
        if not command:
            return await _serve(sim, scenario, args.timeout)
        return await _run_child(sim, scenario, command, args.timeout)


async def _serve(sim: Any, scenario: Any, timeout: float) -> int:
    print(f"Discord simulator listening on {sim.url}. For a bot started elsewhere:")
    print(f"  export {env.DISCORD_OTEL_SIMULATOR_URL}={sim.url}")
    print(f"  export DISCORD_TOKEN={sim.token}")
    print(f"  export PYTHONPATH={SITECUSTOMIZE_DIR}${{PYTHONPATH:+:$PYTHONPATH}}")
    print(
        "(or run it with opentelemetry-instrument, which needs only the first line). Ctrl+C stops."
    )
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    code = 0
    if scenario is not None:
        from discord_otel.simulator.summary import print_summary

        run = asyncio.create_task(sim.run(scenario, wait_ready_timeout=24 * 3600))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            result = run.result()
            print_summary(result)
            code = 0 if result.ok else 1
        else:
            run.cancel()
        stopped.cancel()
    await stop.wait()
    return code


async def _run_child(sim: Any, scenario: Any, command: list[str], timeout: float) -> int:
    from discord_otel.simulator.summary import print_summary

    try:
        child = await asyncio.create_subprocess_exec(
            *command, env=child_environment(sim.url, sim.token)
        )
    except OSError as exc:
        print(f"discord-otel simulate: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 2
    exited = asyncio.create_task(child.wait())
    connected = False
    result = None
    try:
        ready = asyncio.create_task(
            sim.wait_ready(timeout, commands=bool(scenario and scenario.needs_commands()))
        )
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and ready.exception() is None:
            connected = True
        else:
            ready.cancel()
            print("discord-otel simulate: the bot did not connect", file=sys.stderr)
        if connected and scenario is not None:
            run = asyncio.create_task(sim.run(scenario, wait_ready_timeout=timeout))
            await asyncio.wait({run, exited}, return_when=asyncio.FIRST_COMPLETED)
            if run.done():
                result = run.result()
            else:
                run.cancel()
                print("discord-otel simulate: the bot exited during the scenario", file=sys.stderr)
    finally:
        status = await _stop_child(child, exited)
    if result is not None:
        print_summary(result)
    clean = status in CLEAN_EXITS
    if not clean:
        print(f"discord-otel simulate: the bot exited with status {status}", file=sys.stderr)
    scenario_ok = result.ok if result is not None else scenario is None
    ok = connected and clean and scenario_ok
    return 0 if ok else 1


async def _stop_child(child: asyncio.subprocess.Process, exited: asyncio.Task[int]) -> int:
    """SIGINT, so the bot shuts down and flushes; then SIGTERM; then kill. Returns its status."""
    for signum, grace in ((signal.SIGINT, INTERRUPT_GRACE), (signal.SIGTERM, TERMINATE_GRACE)):
        if exited.done():
            break
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), grace)
    if not exited.done():
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    return await exited
