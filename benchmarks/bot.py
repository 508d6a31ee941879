"""The benchmark bot: a plain discord.py ``commands.Bot``, run as its own process.

Run as ``python benchmarks/bot.py`` (baseline, peers) or under
``opentelemetry-instrument python benchmarks/bot.py`` (our modes). It imports
nothing of OpenTelemetry or discord-otel itself, so the baseline is a bot alone.

The harness drives it through the simulator with control messages (a member
posts ``bench:...`` in the channel) and reads its answers from the simulator's
REST log (the bot posts ``bench:...`` replies). Measurement is bot-side and
costs two clock reads per workload plus one integer increment per counted event:

- ``bench:arm W N``: start a loopback workload (W1: N MESSAGE_CREATE follow,
  W3: N PRESENCE_UPDATE / TYPING_START, W2: N commands); the clock starts here;
- ``bench:end``: end of a W1/W3 flood (W2 ends when the N-th command replied);
- ``bench:feed W``: feed the pre-built payloads of workload W straight into
  ``DiscordWebSocket.received_message`` (no socket), W2 with a bounded window;
- the reply ``bench:done {json}`` carries wall and CPU seconds, counts, RSS.

Environment: ``DISCORD_OTEL_SIMULATOR_URL``, ``DISCORD_TOKEN``, ``BENCH_FEEDS``
(a JSON file of pre-built payloads per workload), ``BENCH_PG_DSN`` (asyncpg),
``BENCH_PEER`` (``argus`` or ``prometheus``), ``BENCH_PEER_PORT``, ``BENCH_RANDOM_SEED``
(seeds ``random``, whence the SDK's trace ids: the same sampling decisions every run).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import sys
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any

import discord
import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket

W2_WINDOW = 16  # commands in flight at once (both paths)


def _redirect() -> None:
    # The same two class attributes discord-otel's redirect sets; done here so that
    # the baseline bot imports nothing of discord-otel.
    base = os.environ["DISCORD_OTEL_SIMULATOR_URL"].rstrip("/")
    discord.http.Route.BASE = base + "/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + base[len("http") :] + "/gateway")


def _rss_kb() -> tuple[int, int]:
    """(peak, current) resident set of this process image, KiB.

    VmHWM, not ru_maxrss: the latter keeps the high-water mark from before
    exec, i.e. of the harness process this bot was forked from.
    """
    fields = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, value = line.split(":", 1)
                    fields[name] = int(value.split()[0])
    except OSError:
        pass
    if "VmHWM" not in fields:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak
    return fields["VmHWM"], fields.get("VmRSS", 0)


def _instrumented() -> bool:
    """Is discord-otel's discord.py instrumentation active in this process?

    True if any of the discord.py hooks it installs (wrapt wrappers or replaced
    functions) is in place."""
    if "discord_otel.instrumentation" not in sys.modules:
        return False
    from discord.state import ConnectionState

    hooks = (
        (discord.Client, "_run_event"),
        (discord.Client, "_schedule_event"),
        (ConnectionState, "_update_references"),
        (DiscordWebSocket, "from_client"),
    )
    for owner, name in hooks:
        found = owner.__dict__.get(name)
        if hasattr(found, "__wrapped__"):
            return True
        if str(getattr(found, "__module__", "")).startswith("discord_otel"):
            return True
    return False


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process (Linux /proc; names from threading)."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            name = names.get(int(tid), f"tid {tid}")
            found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        pass
    return found


def _allocation_site(obj: object) -> tuple[str, str]:
    """(type, the last three frames that allocated it), as tracemalloc saw them."""
    traceback = tracemalloc.get_object_traceback(obj)
    if traceback is None:
        return (type(obj).__qualname__, "?")
    frames = [f"{_short(frame.filename)}:{frame.lineno}" for frame in traceback]
    return (type(obj).__qualname__, " < ".join(frames))


def _short(path: str) -> str:
    """A module's path from its package (site-packages or the standard library)."""
    _, found, tail = path.rpartition("site-packages/")
    if found:
        return tail
    _, found, tail = path.rpartition("/lib/python3")
    return tail.partition("/")[2] if found else path


def _allocating_code() -> str:
    """The thread and the three innermost Python frames below the GC callback."""
    frame = sys._getframe(2)
    stack = []
    while frame is not None and len(stack) < 3:
        stack.append(f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}")
        frame = frame.f_back
    return f"{threading.current_thread().name} {' < '.join(stack)}"


class _GcClock:
    """Time spent in the cyclic garbage collector (a callback per collection only)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self.full = 0  # generation-2 collections
        self.collected = 0  # objects freed by the cyclic GC (garbage in cycles)
        self.reset_generations()
        self._started = 0.0
        self.sites: Counter[tuple[str, str]] | None = None
        # BENCH_GC_TRIGGERS: what was allocating when each young collection began
        self.triggers: Counter[str] | None = None
        if os.environ.get("BENCH_GC_TRIGGERS"):
            self.triggers = Counter()
        gc.callbacks.append(self._callback)

    def reset_generations(self) -> None:
        """Per generation, from now: [collections, seconds, objects freed]."""
        self.generations: list[list[float]] = [[0, 0.0, 0] for _ in range(3)]

    def snapshot(self) -> tuple[float, int, int, int]:
        return (self.seconds, self.collections, self.full, self.collected)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        # diagnosis: the objects of generation BENCH_GC_SAMPLE (0 or 1) as it is collected
        sampled = os.environ.get("BENCH_GC_SAMPLE")
        if phase == "start" and sampled and info.get("generation") == int(sampled):
            sample: Counter[str] | None = getattr(self, "sample", None)
            if sample is None:
                sample = self.sample = Counter()
            young = gc.get_objects(generation=int(sampled))
            sample.update(type(o).__qualname__ for o in young)
            if self.sites is not None:  # BENCH_GC_SITES: where each was allocated
                self.sites.update(_allocation_site(o) for o in young)
        if phase == "start" and self.triggers is not None and info.get("generation") == 0:
            self.triggers[_allocating_code()] += 1
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.seconds += took
            self.collections += 1
            generation = self.generations[info.get("generation", 2)]
            generation[0] += 1
            generation[1] += took
            generation[2] += info.get("collected", 0)
            self.full += info.get("generation") == 2
            self.collected += info.get("collected", 0)


class Bench:
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.count = 0  # W1 events seen by the listener
        self.done = 0  # W2 commands that got their reply
        self.done_event = asyncio.Event()
        self.fed = asyncio.Event()  # set when a workload's result is out
        self.profiler: Any = None
        self.gc = _GcClock()
        self.gc0 = self.gc.snapshot()
        self.threads0 = _thread_cpu()
        self.workload: str | None = None
        self.target = 0
        self.t0 = 0.0
        self.c0 = 0.0
        self.usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.channel: Any = None
        self.pool: Any = None
        self.db_queries = 0
        self.errors = 0
        feeds = os.environ.get("BENCH_FEEDS")
        self.feeds: dict[str, list[str]] = {}
        if feeds:
            with open(feeds) as handle:
                self.feeds = json.load(handle)

    # -- measurement ---------------------------------------------------------------

    def start(self, workload: str, target: int) -> None:
        self.workload, self.target = workload, target
        self.fed.clear()
        if os.environ.get("BENCH_CPROFILE") and not workload.startswith("warm"):
            import cProfile

            self.cprofile = cProfile.Profile()
            self.cprofile.enable()
        if os.environ.get("BENCH_YAPPI") and not workload.startswith("warm"):
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start(builtins=True)
        if os.environ.get("BENCH_PROFILE") and not workload.startswith("warm"):
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=0.0002, async_mode="disabled")
            self.profiler.start()
        self.count = self.done = self.db_queries = self.errors = 0
        self.gc0 = self.gc.snapshot()
        self.gc.reset_generations()
        if os.environ.get("BENCH_GC_OFF"):  # how far the young count rises with no collection
            gc.disable()
            self.young_count = gc.get_count()[0]
        if os.environ.get("BENCH_GC_SITES") and os.environ.get("BENCH_GC_SAMPLE"):
            tracemalloc.start(3)  # slows the run: for where, not how long
            self.gc.sites = Counter()
        self.threads0 = _thread_cpu()
        self.usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()

    async def finish(self) -> None:
        wall = time.perf_counter() - self.t0
        cpu = time.process_time() - self.c0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak, current = _rss_kb()
        if getattr(self, "cprofile", None) is not None:
            self.cprofile.disable()
            self.cprofile.dump_stats(f"{os.environ['BENCH_CPROFILE']}-{self.workload}.pstat")
            self.cprofile = None
        if os.environ.get("BENCH_YAPPI") and self.workload and not self.workload.startswith("warm"):
            import yappi

            yappi.stop()
            path = f"{os.environ['BENCH_YAPPI']}-{self.workload}"
            yappi.get_func_stats().save(path + ".pstat", type="pstat")
            yappi.get_func_stats(filter={"ctx_id": 0}).save(path + ".main.pstat", type="pstat")
            with open(path + ".threads.txt", "w") as handle:  # noqa: ASYNC230 (diagnosis only)
                yappi.get_thread_stats().print_all(out=handle)
            yappi.clear_stats()
        if self.profiler is not None:
            self.profiler.stop()
            path = f"{os.environ['BENCH_PROFILE']}-{self.workload}.txt"
            with open(path, "w") as handle:  # noqa: ASYNC230 (diagnosis only)
                handle.write(self.profiler.output_text(unicode=False, color=False, show_all=True))
            self.profiler = None
        threads1 = _thread_cpu()
        result: dict[str, Any] = {
            "thread_cpu": {
                name: round(cpu - self.threads0.get(name, 0.0), 3)
                for name, cpu in threads1.items()
                if cpu - self.threads0.get(name, 0.0) > 0.001
            },
            "workload": self.workload,
            "target": self.target,
            "wall": wall,
            "cpu": cpu,
            # where CPU goes that instruction counts do not show: the kernel's
            # share, page faults, and how often the threads were switched
            "cpu_user": usage.ru_utime - self.usage0.ru_utime,
            "cpu_sys": usage.ru_stime - self.usage0.ru_stime,
            "minor_faults": usage.ru_minflt - self.usage0.ru_minflt,
            "voluntary_switches": usage.ru_nvcsw - self.usage0.ru_nvcsw,
            "involuntary_switches": usage.ru_nivcsw - self.usage0.ru_nivcsw,
            "count": self.count,
            "done": self.done,
            "db_queries": self.db_queries,
            "errors": self.errors,
            "gc_s": self.gc.seconds - self.gc0[0],
            "gc_collections": self.gc.collections - self.gc0[1],
            "gc_full": self.gc.full - self.gc0[2],
            "gc_collected": self.gc.collected - self.gc0[3],
            "gc_objects": len(gc.get_objects()),
            "gc_generations": self.gc.generations,
            "rss_peak_kb": peak,
            "rss_kb": current,
            "instrumented": _instrumented(),
            "otel_sdk_loaded": "opentelemetry.sdk" in sys.modules,
        }
        if os.environ.get("BENCH_GC_SAMPLE"):
            sample = getattr(self.gc, "sample", None)
            if sample is not None:
                result["gc_sample"] = sample.most_common(30)
                sample.clear()
            if self.gc.sites is not None:
                result["gc_sites"] = [[*site, n] for site, n in self.gc.sites.most_common(100)]
                self.gc.sites.clear()
        if self.gc.triggers is not None:
            result["gc_triggers"] = self.gc.triggers.most_common(40)
            self.gc.triggers.clear()
        if os.environ.get("BENCH_GC_OFF"):
            result["gc_count_growth"] = gc.get_count()[0] - self.young_count
            gc.enable()
        if os.environ.get("BENCH_CENSUS"):  # diagnosis: which objects the GC tracks
            census = Counter(type(o).__qualname__ for o in gc.get_objects())
            result["census"] = census.most_common(25)
            gc.set_debug(gc.DEBUG_SAVEALL)  # what is garbage in cycles, waiting for the GC
            gc.collect()
            garbage = Counter(type(o).__qualname__ for o in gc.garbage)
            result["garbage"] = garbage.most_common(20)
            gc.garbage.clear()
            gc.set_debug(0)
        self.workload = None
        self.fed.set()
        await self.channel.send("bench:done " + json.dumps(result, separators=(",", ":")))

    def command_done(self) -> None:
        self.done += 1
        if self.done == self.target and self.workload and "W2" in self.workload:
            asyncio.get_running_loop().create_task(self.finish())
        self.done_event.set()

    # -- control -------------------------------------------------------------------

    async def control(self, content: str) -> None:
        parts = content.split()
        if parts[0] == "bench:arm":
            await self.channel.send("bench:armed")
            self.start(parts[1], int(parts[2]))  # the flood starts once the harness sees that
        elif parts[0] == "bench:end":
            await self.finish()
        elif parts[0] == "bench:feed":
            await self.feed(parts[1])
        elif parts[0] == "bench:exit":
            await self.bot.close()

    async def feed(self, workload: str) -> None:
        await self._feed(workload)

    async def _feed(self, workload: str) -> None:
        payloads = self.feeds.pop(workload)
        received = self.bot.ws.received_message
        self.start(workload + "b", len(payloads))
        if "W2" in workload:
            event = self.done_event
            for index, payload in enumerate(payloads):
                while index - self.done >= W2_WINDOW:
                    event.clear()
                    await event.wait()
                await received(payload)
            return  # command_done() finishes
        for index, payload in enumerate(payloads):
            await received(payload)
            if index % 64 == 63:
                await asyncio.sleep(0)  # let the listener tasks run, as a socket read would
        await asyncio.sleep(0)
        if "W1" in workload:  # wait for the listener tasks still queued (bounded)
            for _ in range(10_000):
                if self.count >= len(payloads):
                    break
                await asyncio.sleep(0)
        await self.finish()

    async def query(self, n: int) -> None:
        if self.pool is not None:
            await self.pool.fetchval("SELECT $1::int + 1", n)
            self.db_queries += 1


def build() -> tuple[commands.Bot, Bench]:
    intents = discord.Intents.all()
    bot = commands.Bot(
        command_prefix="!",
        intents=intents,
        help_command=None,
        chunk_guilds_at_startup=False,
        guild_ready_timeout=0.3,
    )
    bench = Bench(bot)

    @bot.listen("on_message")
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        content = message.content
        if content.startswith("bench:"):
            await bench.control(content)
        else:
            bench.count += 1

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")
        bench.command_done()

    @bot.command()
    async def db(ctx: commands.Context[commands.Bot]) -> None:
        await bench.query(1)
        await ctx.send("pong db")
        bench.command_done()

    @bot.tree.command(name="ping", description="pong")
    async def slash_ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")
        bench.command_done()

    @bot.tree.command(name="db", description="pong after a query")
    async def slash_db(interaction: discord.Interaction) -> None:
        await bench.query(2)
        await interaction.response.send_message("pong db")
        bench.command_done()

    @bot.event
    async def on_command_error(ctx: Any, error: Exception) -> None:
        bench.errors += 1
        bench.command_done()

    @bot.tree.error
    async def on_app_command_error(interaction: Any, error: Exception) -> None:
        bench.errors += 1
        bench.command_done()

    @bot.event
    async def on_ready() -> None:
        guild = bot.guilds[0]
        bench.channel = guild.text_channels[0]
        await bench.channel.send("bench:ready " + json.dumps({"instrumented": _instrumented()}))

    original_setup = bot.setup_hook

    async def setup_hook() -> None:
        await original_setup()
        dsn = os.environ.get("BENCH_PG_DSN")
        if dsn:
            import asyncpg

            bench.pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        await bot.tree.sync()
        if os.environ.get("BENCH_GC_FREEZE"):  # diagnosis: what gc.freeze() after start-up buys
            gc.collect()
            gc.freeze()
        if os.environ.get("BENCH_SWITCH_INTERVAL"):  # diagnosis: GIL hand-offs to threads
            sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    _attach_peer(bot)
    return bot, bench


def _attach_peer(bot: commands.Bot) -> None:
    peer = os.environ.get("BENCH_PEER")
    port = int(os.environ.get("BENCH_PEER_PORT", "0"))
    if peer == "argus":
        # As its README says: one line. Bound to loopback on a free port.
        from argus import Argus

        Argus(bot, host="127.0.0.1", port=port)
    elif peer == "prometheus":
        # As its README says: add the cog. Its exposition server binds 0.0.0.0 by
        # default; we keep it on loopback (same cost, nothing listens outside).
        import functools

        from discord.ext.prometheus import PrometheusCog, prometheus_cog

        prometheus_cog.start_http_server = functools.partial(  # type: ignore[attr-defined]
            prometheus_cog.start_http_server, addr="127.0.0.1"
        )
        original_setup = bot.setup_hook

        async def setup_hook() -> None:
            await original_setup()
            await bot.add_cog(PrometheusCog(bot, port=port))

        bot.setup_hook = setup_hook  # type: ignore[method-assign]
    elif peer:
        raise SystemExit(f"unknown BENCH_PEER {peer!r}")


async def main() -> None:
    _redirect()
    seed = os.environ.get("BENCH_RANDOM_SEED")
    if seed:  # deterministic trace ids, so 10% sampling picks the same events every run
        random.seed(int(seed))
    bot, bench = build()
    del bench
    async with bot:
        await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    import contextlib

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
