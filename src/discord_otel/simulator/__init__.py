"""A local fake Discord that real, unmodified discord.py bots connect to.

The REST API and the gateway websocket are served by aiohttp on one loopback
port. Tests, the demo and the benchmarks drive a bot through it; bot owners
run their own bot against it with ``discord-otel simulate``.

::

    from discord_otel.simulator import Simulator, Scenario

    async with Simulator() as sim:
        with sim.redirect():
            task = asyncio.create_task(bot.start(sim.token))
            await sim.wait_ready()
            calls = await sim.send_message("!ping")
            result = await sim.run(Scenario.load("examples/scenarios/tour.yaml"))
            await bot.close()

Names are imported on first use, so that the start-up hook in
:mod:`discord_otel.simulator.redirect` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from discord_otel.simulator.faults import Fault, Faults
    from discord_otel.simulator.gateway import GatewayOp
    from discord_otel.simulator.rest import RestCall
    from discord_otel.simulator.runner import ScenarioResult, StepResult
    from discord_otel.simulator.scenario import Scenario, ScenarioError
    from discord_otel.simulator.server import ReactionTimeout, Simulator, StepFailed

_HOMES = {
    "Fault": "faults",
    "Faults": "faults",
    "GatewayOp": "gateway",
    "RestCall": "rest",
    "ScenarioResult": "runner",
    "StepResult": "runner",
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "ReactionTimeout": "server",
    "Simulator": "server",
    "StepFailed": "server",
}

__all__ = [
    "Fault",
    "Faults",
    "GatewayOp",
    "ReactionTimeout",
    "RestCall",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Simulator",
    "StepFailed",
    "StepResult",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
