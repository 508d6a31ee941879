"""Steady, varied traffic for the example bot, through the simulator's Python API.

Members post messages and use every kind of command, component and modal the
example bot has; some commands fail (``!fail`` raises, ``!admin`` fails its
check), some are slow (``/slow`` takes 1.5 s), some are unknown. Every few
seconds a fault is injected into the simulated Discord: a 429 (bucket, then
global scope), a 503, or slow responses, so the bot's REST calls retry and
wait as they would on a bad day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MESSAGES = "POST /channels/{channel_id}/messages"
CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"

Action = Callable[[Any, random.Random, int], Awaitable[Any]]


async def _hello(sim: Any, rng: random.Random, guild: int) -> None:
    greeting = rng.choice(["hello everyone", "hello bot", "hello there"])
    await sim.send_message(greeting, guild=guild, timeout=5)


async def _ping(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.send_message("!ping", guild=guild, timeout=5)


async def _roll_prefix(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.send_message(f"!roll {rng.choice([6, 12, 20, 100])}", guild=guild, timeout=5)


async def _roll_slash(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.slash("roll", {"sides": rng.choice([6, 12, 20])}, guild=guild, timeout=5)


async def _echo(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.autocomplete("echo", "text", rng.choice("hg"), guild=guild, timeout=5)
    await sim.slash("echo", {"text": rng.choice(["hi", "hey", "howdy"])}, guild=guild, timeout=5)


async def _config(sim: Any, rng: random.Random, guild: int) -> None:
    options = {"key": "colour", "value": rng.choice(["red", "green", "blue"])}
    await sim.slash("config set", options, guild=guild, timeout=5)


async def _context_menus(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.user_command("Inspect", guild=guild, timeout=5)
    await sim.message_command("Quote", guild=guild, timeout=5)


async def _menu(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.slash("menu", guild=guild, timeout=5)
    await sim.click("confirm", timeout=5)
    await sim.select("colour", [rng.choice(["red", "green", "blue"])], timeout=5)


async def _feedback(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.slash("feedback", guild=guild, timeout=5)
    answer = rng.choice(["great", "fine", "could be faster"])
    await sim.submit("feedback", {"answer": answer}, guild=guild, timeout=5)


async def _fail(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.send_message("!fail", guild=guild, timeout=5)


async def _admin(sim: Any, rng: random.Random, guild: int) -> None:
    await sim.send_message("!admin", guild=guild, timeout=5)


async def _slow(sim: Any, rng: random.Random, guild: int) -> None:
    if rng.random() < 0.5:
        await sim.slash("slow", guild=guild, timeout=5)
    else:
        await sim.send_message("!slow", guild=guild, timeout=5)


async def _unknown(sim: Any, rng: random.Random, guild: int) -> None:
    # The bot ignores unknown commands, so there is nothing to wait for.
    await sim.send_message(f"!{rng.choice(['help', 'nope', 'stats'])}", guild=guild, wait=False)


# (weight, label, action)
ACTIONS: tuple[tuple[int, str, Action], ...] = (
    (3, "hello", _hello),
    (4, "!ping", _ping),
    (3, "!roll", _roll_prefix),
    (3, "/roll", _roll_slash),
    (2, "/echo", _echo),
    (2, "/config set", _config),
    (1, "context menus", _context_menus),
    (2, "/menu", _menu),
    (1, "/feedback", _feedback),
    (2, "!fail", _fail),
    (1, "!admin", _admin),
    (1, "slow", _slow),
    (1, "unknown", _unknown),
)


def _faults(sim: Any) -> list[tuple[str, Callable[[], Any]]]:
    faults = sim.faults
    return [
        ("429 on messages", lambda: faults.add_ratelimit(MESSAGES, retry_after=0.3)),
        ("slow interaction responses", lambda: faults.add_delay(CALLBACK, 0.8, times=2)),
        ("503 on messages", lambda: faults.add_server_error(MESSAGES, status=503)),
        ("slow messages", lambda: faults.add_delay(MESSAGES, 0.6, times=3)),
        (
            "global 429",
            lambda: faults.add_ratelimit(MESSAGES, scope="global", retry_after=0.2),
        ),
        ("429 on interaction responses", lambda: faults.add_ratelimit(CALLBACK, retry_after=0.3)),
    ]


@dataclass
class TrafficStats:
    sent: Counter[str] = field(default_factory=Counter)
    no_reaction: int = 0
    failed: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class Traffic:
    """Sends ``rate`` actions per second (at most ``max_in_flight`` at once) and
    injects a fault every ``fault_every`` seconds, until :meth:`stop`."""

    def __init__(
        self,
        sim: Any,
        *,
        rate: float = 4.0,
        seed: int | None = None,
        fault_every: float = 3.0,
        max_in_flight: int = 12,
    ) -> None:
        self.sim = sim
        self.rate = rate
        self.rng = random.Random(seed)
        self.fault_every = fault_every
        self.max_in_flight = max_in_flight
        self.stats = TrafficStats()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._weights = [weight for weight, _, _ in ACTIONS]

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        faults = _faults(self.sim)
        next_fault = loop.time() + 1.0
        fault_index = 0
        guilds = len(self.sim.state.guilds)
        while not self._stopping.is_set():
            if loop.time() >= next_fault:
                label, add = faults[fault_index % len(faults)]
                fault_index += 1
                next_fault += self.fault_every
                self._prune_faults()
                add()
                self.stats.faults[label] += 1
            if len(self._in_flight) < self.max_in_flight:
                _, label, action = self.rng.choices(ACTIONS, self._weights)[0]
                guild = self.rng.randrange(guilds)
                task = asyncio.create_task(self._run_one(label, action, guild))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1 / self.rate)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for the actions in flight (cancel what is left after ``timeout``)."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    async def _run_one(self, label: str, action: Action, guild: int) -> None:
        from discord_otel.simulator import ReactionTimeout, StepFailed

        self.stats.sent[label] += 1
        try:
            await action(self.sim, self.rng, guild)
        except ReactionTimeout:
            self.stats.no_reaction += 1
        except StepFailed as exc:
            self.stats.failed += 1
            logger.debug("demo traffic: %s: %s", label, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.failed += 1
            logger.debug("demo traffic: %s failed", label, exc_info=True)

    def _prune_faults(self) -> None:
        active = self.sim.faults.active
        active[:] = [f for f in active if f.times is None or f.fired < f.times]
