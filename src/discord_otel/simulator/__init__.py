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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord_otel.simulator.faults import Fault, Faults
from discord_otel.simulator.gateway import GatewayOp
from discord_otel.simulator.rest import RestCall
from discord_otel.simulator.server import ReactionTimeout, Simulator, StepFailed

if TYPE_CHECKING:
    from discord_otel.simulator.runner import ScenarioResult, StepResult
    from discord_otel.simulator.scenario import Scenario, ScenarioError

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
    # Scenarios pull in YAML and the runner; load them on first use only.
    if name in ("Scenario", "ScenarioError"):
        from discord_otel.simulator import scenario

        return getattr(scenario, name)
    if name in ("ScenarioResult", "StepResult"):
        from discord_otel.simulator import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
