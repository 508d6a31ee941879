"""The benchmark driver: modes x workloads x paths, interleaved rounds, ratios.

Each round starts one bot process per mode (in a rotated order), each against
its own fresh simulator in this process. A bot process runs every workload on
both paths -- (b) the pre-built payloads fed to ``received_message`` in the
bot, then (a) the same events sent by the simulator over loopback -- and is
timed from spawn to READY. A mode's ratio in a round is its throughput over
the baseline's in that round; the report gives the median and the min/max over
rounds. A last pass runs W1 over loopback with 100,000 events per mode for the
peak RSS. The OTLP receiver (``otlp_sink``) is a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import payloads

HERE = Path(__file__).resolve().parent
BOT = HERE / "bot.py"

WORKLOADS = ("W1", "W2", "W3")
PATHS = ("b", "a")  # in-process first, then loopback


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    instrument: bool  # run under opentelemetry-instrument
    env: dict[str, str] = field(default_factory=dict)
    peer: str | None = None


MODES = (
    Mode("baseline", "baseline (plain python)", False),
    Mode("sdk_disabled", "OTEL_SDK_DISABLED=true", True, {"OTEL_SDK_DISABLED": "true"}),
    Mode(
        "metrics",
        "metrics only",
        True,
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"},
    ),
    Mode(
        "default100",
        "default, 100% sampled",
        True,
        {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    ),
    Mode(
        "default10",
        "default, 10% parent-based",
        True,
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
    Mode("argus", "peer: argus-dpy", False, peer="argus"),
    Mode("prometheus", "peer: discord-ext-prometheus", False, peer="prometheus"),
)

# Diagnosis only (``--modes``): which instrumentation a mode's cost comes from.
_OTHERS = "aiohttp-client,asyncpg,logging,system_metrics"
_METRICS_ONLY = {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
_ALWAYS_ON = {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}
DIAGNOSTIC_MODES = (
    Mode(
        "metrics_discord_only",
        "metrics only, discord.py instrumentation alone",
        True,
        {**_METRICS_ONLY, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": _OTHERS},
    ),
    Mode(
        "metrics_no_discord",
        "metrics only, without the discord.py instrumentation",
        True,
        {**_METRICS_ONLY, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "discord"},
    ),
    Mode(
        "default100_discord_only",
        "default 100%, discord.py instrumentation alone",
        True,
        {**_ALWAYS_ON, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": _OTHERS},
    ),
    Mode(
        "default100_no_discord",
        "default 100%, without the discord.py instrumentation",
        True,
        {**_ALWAYS_ON, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "discord"},
    ),
    Mode(
        "default100_no_aiohttp",
        "default 100%, without aiohttp-client instrumentation",
        True,
        {**_ALWAYS_ON, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "aiohttp-client"},
    ),
    Mode(
        "metrics_python",
        "metrics only, pure-Python halves (OTEL_PYTHON_DISCORD_COMPILED=false)",
        True,
        {**_METRICS_ONLY, "OTEL_PYTHON_DISCORD_COMPILED": "false"},
    ),
)
_DISABLED = {"OTEL_SDK_DISABLED": "true"}
DIAGNOSTIC_MODES += (
    Mode(
        "sdk_disabled_no_instrumentations",
        "OTEL_SDK_DISABLED=true and every instrumentation disabled",
        True,
        {**_DISABLED, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "discord," + _OTHERS},
    ),
    Mode(
        "sdk_disabled_no_aiohttp",
        "OTEL_SDK_DISABLED=true, aiohttp-client instrumentation disabled",
        True,
        {**_DISABLED, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "aiohttp-client"},
    ),
    Mode("baseline_gc_freeze", "baseline, gc.freeze() after start-up", False, {}),
    Mode("metrics_gc_freeze", "metrics only, gc.freeze() after start-up", True, _METRICS_ONLY),
    Mode("default100_gc_freeze", "default 100%, gc.freeze() after start-up", True, _ALWAYS_ON),
)
MODE_BY_NAME = {m.name: m for m in MODES + DIAGNOSTIC_MODES}
# the SDK's batch span processor thread: where spans are encoded and sent
SPAN_EXPORT_THREAD = "OtelBatchSpanRecordProcessor"


@dataclass
class Sizes:
    events: dict[str, int]  # per workload, per path
    rounds: int
    memory_events: int
    micro_n: int

    @classmethod
    def preset(cls, name: str) -> Sizes:
        if name == "smoke":
            return cls({"W1": 200, "W2": 20, "W3": 200}, 1, 1000, 2000)
        if name == "quick":
            return cls({"W1": 5000, "W2": 400, "W3": 10000}, 2, 20000, 20000)
        # W2 runs are the shortest: 5,000 commands keep one metric export or full
        # collection from swinging a run's rate
        return cls({"W1": 30000, "W2": 5000, "W3": 60000}, 7, 100000, 100000)


# -- helper processes -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def otlp_sink(workdir: Path, decode: bool = False) -> Any:
    port_file = workdir / "sink.port"
    log = open(workdir / "sink.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.otlp_sink", "--port-file", str(port_file)]
        + (["--decode"] if decode else []),
        cwd=HERE.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OTLP sink did not start (see {workdir / 'sink.log'})")
            time.sleep(0.05)
        yield int(json.loads(port_file.read_text())["port"])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _clean_env() -> dict[str, str]:
    """This environment without any OTEL_*/BENCH_* variable (the baseline sees none)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "BENCH_", "ARGUS_", "DISCORD_OTEL_"))
    }


def mode_command(mode: Mode, prefix: list[str] | None = None) -> list[str]:
    """The bot's command line in ``mode``, after ``prefix`` (e.g. a valgrind command)."""
    python = sys.executable
    if mode.instrument:
        launcher = Path(python).parent / "opentelemetry-instrument"
        command = [str(launcher), python, str(BOT)]
    else:
        command = [python, str(BOT)]
    return [*(prefix or []), *command]


def mode_env(
    mode: Mode, sim_url: str, token: str, sink_port: int, extra: dict[str, str]
) -> dict[str, str]:
    """The bot's environment in ``mode``; ``extra`` comes last (it may override an OTEL_*)."""
    env = _clean_env()
    env.update(
        {
            "DISCORD_OTEL_SIMULATOR_URL": sim_url,
            "DISCORD_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if mode.instrument:
        env.update(
            {
                "OTEL_SERVICE_NAME": "bench-bot",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                # Export metrics every 5 s (the SDK default is 60 s), so that their
                # export falls inside the measured window of a short run.
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                **mode.env,
            }
        )
    if mode.name.endswith("_gc_freeze"):
        env["BENCH_GC_FREEZE"] = "1"
    if mode.peer:
        env["BENCH_PEER"] = mode.peer
        env["BENCH_PEER_PORT"] = str(_free_port())
    env.update(extra)
    return env


# -- one bot process --------------------------------------------------------------


class Watch:
    """Chained onto the simulator's REST log callback: replies and bench: messages."""

    def __init__(self) -> None:
        self.replies = 0
        self.reply_event = asyncio.Event()
        self.messages: asyncio.Queue[str] = asyncio.Queue()

    def on_call(self, call: Any) -> None:
        body = call.json if isinstance(call.json, dict) else {}
        if call.route.endswith("/callback"):
            self.replies += 1
            self.reply_event.set()
            return
        content = body.get("content")
        if not isinstance(content, str):
            return
        if content.startswith("bench:"):
            self.messages.put_nowait(content)
        elif content.startswith("pong"):
            self.replies += 1
            self.reply_event.set()

    async def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {prefix!r} from the bot within {timeout:g}s")
            message = await asyncio.wait_for(self.messages.get(), remaining)
            if message.startswith(prefix):
                return message


async def _stop(proc: asyncio.subprocess.Process, grace: float = 20.0) -> int:
    for signum, wait in ((None, grace), (signal.SIGTERM, 5.0)):
        if proc.returncode is not None:
            break
        if signum is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), wait)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    return await proc.wait()


async def _unless_exited(proc: asyncio.subprocess.Process, work: Coroutine[Any, Any, None]) -> None:
    """Await ``work``, or raise as soon as the bot process exits (not after a timeout)."""
    task = asyncio.ensure_future(work)
    exited = asyncio.ensure_future(proc.wait())
    await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        exited.cancel()
        task.result()  # its exception, if any
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise RuntimeError(f"the bot exited with status {proc.returncode} before its run was over")


async def _sink_stats(session: aiohttp.ClientSession, port: int, reset: bool) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/" + ("reset" if reset else "stats")
    method = session.post if reset else session.get
    async with method(url) as response:
        data: dict[str, Any] = await response.json()
        return data


async def run_bot(
    mode: Mode,
    plan: list[tuple[str, str, int]],
    *,
    sink_port: int,
    pg_dsn: str | None,
    workdir: Path,
    tag: str,
    timeout: float,
    extra_env: dict[str, str] | None = None,
    command_prefix: list[str] | None = None,
    ready_timeout: float = 60.0,
    stop_grace: float = 20.0,
    ballast: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Start the bot in ``mode``, run ``plan`` [(workload, path, events)], stop it.

    ``command_prefix`` runs the bot under another program (``--instructions`` uses
    valgrind); such a slow start and exit want a longer ``ready_timeout`` (spawn to
    the gateway's READY) and ``stop_grace`` (``bench:exit`` to exit, before SIGTERM).
    ``ballast`` {workload: events}: frames the bot loads with its feeds but never runs,
    so that two runs of different sizes load as much (``--instructions``).
    """
    from discord_otel.simulator import Simulator

    result: dict[str, Any] = {"mode": mode.name, "runs": {}, "error": None}
    watch = Watch()
    async with Simulator(members_per_guild=8) as sim, aiohttp.ClientSession() as http:
        previous = sim.rest._on_call

        def on_call(call: Any) -> None:
            previous(call)
            watch.on_call(call)

        sim.rest._on_call = on_call
        steps = _with_warmup(plan)
        counts = {key[:-1]: n for key, w, p, n in steps if p == "b"}
        counts.update({f"ballast{w}": n for w, n in (ballast or {}).items()})
        feeds = payloads.feeds(sim, counts)
        feed_file = workdir / f"feeds-{tag}.json"
        feed_file.write_text(json.dumps(feeds))
        del feeds
        extra = {"BENCH_FEEDS": str(feed_file), **(extra_env or {})}
        if pg_dsn:
            extra["BENCH_PG_DSN"] = pg_dsn
        env = mode_env(mode, sim.url, sim.token, sink_port, extra)
        if mode.instrument:
            await _sink_stats(http, sink_port, reset=True)
        log_path = workdir / f"bot-{tag}.log"
        with open(log_path, "wb") as log:  # noqa: ASYNC230 (a local log file)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *mode_command(mode, command_prefix),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=HERE.parent,
            )

            async def drive() -> None:
                await sim.wait_ready(timeout=ready_timeout, commands=True)
                result["startup_s"] = time.perf_counter() - started
                ready = await watch.expect("bench:ready", timeout)
                result["instrumented"] = json.loads(ready.split(" ", 1)[1])["instrumented"]
                for key, workload, path, events in steps:
                    run = await _run_workload(sim, watch, key, workload, path, events, timeout)
                    if not key.startswith("warm"):
                        result["runs"][key] = run

            try:
                await _unless_exited(proc, drive())
                sim.gateway.dispatch(
                    "MESSAGE_CREATE",
                    sim.state.message_payload(
                        channel=sim.guild(0).text_channel,
                        author=payloads._humans(sim)[0].user,
                        content="bench:exit",
                    ),
                    shard=0,
                )
            except Exception as exc:  # reported in the results, never hidden
                result["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                result["exit_status"] = await _stop(proc, stop_grace)
                feed_file.unlink(missing_ok=True)
        if mode.instrument:
            result["exported"] = await _sink_stats(http, sink_port, reset=False)
    if result["error"]:
        tail = log_path.read_text(errors="replace")[-3000:]
        result["log_tail"] = tail
    return result


def _control(sim: Any, text: str) -> None:
    guild = sim.guild(0)
    message = sim.state.message_payload(
        channel=guild.text_channel, author=payloads._humans(sim)[0].user, content=text
    )
    if not sim.gateway.dispatch("MESSAGE_CREATE", message, shard=0):
        raise RuntimeError("the bot is not connected")


def warmup_events(events: int) -> int:
    """The untimed events run before a workload of ``events`` (see ``_with_warmup``)."""
    return max(10, min(events // 10, 1000))


def _with_warmup(plan: list[tuple[str, str, int]]) -> list[tuple[str, str, str, int]]:
    """(key, workload, path, events): each path's workloads first run once small, untimed,
    so that first-use costs (imports, caches, pools, connections) are not measured."""
    steps = []
    for path in PATHS:
        mine = [(w, p, n) for w, p, n in plan if p == path]
        steps += [(f"warm{w}{p}", w, p, warmup_events(n)) for w, p, n in mine]
        steps += [(f"{w}{p}", w, p, n) for w, p, n in mine]
    return steps


@contextlib.contextmanager
def _harness_gc_paused() -> Any:
    """This process's cyclic collector held off while a workload is timed: the
    simulator serving the bot lives here, and a full collection of the payloads
    built for a run stalled the bot's gateway and REST calls for 0.1-0.4 s at
    points that fall on whichever mode happens to run then. What a run leaves is
    collected after it, while the bot waits."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def _run_workload(
    sim: Any, watch: Watch, key: str, workload: str, path: str, events: int, timeout: float
) -> dict[str, Any]:
    with _harness_gc_paused():
        return await _timed_workload(sim, watch, key, workload, path, events, timeout)


async def _timed_workload(
    sim: Any, watch: Watch, key: str, workload: str, path: str, events: int, timeout: float
) -> dict[str, Any]:
    if path == "b":
        _control(sim, f"bench:feed {key[:-1]}")
    else:
        events_data = payloads.BUILDERS[workload](sim, events)
        guild_id = sim.guild(0).id
        _control(sim, f"bench:arm {key} {events}")
        await watch.expect("bench:armed", timeout)
        dispatch = sim.gateway.dispatch_json
        if workload == "W2":
            watch.replies = 0
            for index, (event, data) in enumerate(events_data):
                deadline = time.monotonic() + timeout
                while index - watch.replies >= 16:
                    watch.reply_event.clear()
                    await asyncio.wait_for(watch.reply_event.wait(), deadline - time.monotonic())
                dispatch(event, data, guild_id=guild_id)
        else:
            # Queued in chunks: the writer starts streaming while the rest is queued,
            # and the simulator stays ahead of the bot (it only frames and compresses).
            for index, (event, data) in enumerate(events_data):
                dispatch(event, data, guild_id=guild_id)
                if index % 512 == 511:
                    await asyncio.sleep(0)
            _control(sim, "bench:end")
    done = await watch.expect("bench:done", timeout)
    run: dict[str, Any] = json.loads(done.split(" ", 1)[1])
    run["events"] = events if path == "a" else run["target"]
    counted = {"W1": run["count"], "W2": run["done"], "W3": run["events"]}[workload]
    run["complete"] = counted == run["events"]
    run["throughput"] = run["events"] / run["wall"] if run["wall"] > 0 else 0.0
    run["cpu_throughput"] = run["events"] / run["cpu"] if run["cpu"] > 0 else 0.0
    return run


# -- the whole run ------------------------------------------------------------------


def _load() -> list[float]:
    try:
        return list(os.getloadavg())
    except OSError:
        return []


async def run_all(
    sizes: Sizes,
    modes: list[Mode],
    workloads: list[str],
    *,
    sink_port: int,
    pg_dsn: str | None,
    workdir: Path,
    progress: Any = print,
    timeout: float = 180,
    machine_speed: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Every round, then the memory pass. ``machine_speed()`` (ms of a fixed loop),
    when given, is taken before each bot run: it shows which runs a host that
    changed speed under the benchmark slowed."""
    plan = [(w, p, sizes.events[w]) for p in PATHS for w in workloads]
    rounds: list[dict[str, Any]] = []
    for number in range(sizes.rounds):
        order = modes[number % len(modes) :] + modes[: number % len(modes)]
        current: dict[str, Any] = {}
        for mode in order:
            speed_ms = machine_speed() if machine_speed is not None else None
            began = time.monotonic()
            outcome = await run_bot(
                mode,
                plan,
                sink_port=sink_port,
                pg_dsn=pg_dsn,
                workdir=workdir,
                tag=f"r{number}-{mode.name}",
                timeout=timeout,
            )
            outcome["load"] = _load()
            if speed_ms is not None:
                outcome["speed_ms"] = speed_ms
            current[mode.name] = outcome
            summary = " ".join(
                f"{key}={run['throughput']:.0f}/s" for key, run in outcome["runs"].items()
            )
            progress(
                f"round {number + 1}/{sizes.rounds} {mode.name:<13} "
                f"start {outcome.get('startup_s', float('nan')):.2f}s {summary}"
                + (f" ERROR {outcome['error']}" if outcome["error"] else "")
                + f" ({time.monotonic() - began:.0f}s)"
            )
        rounds.append(current)
    memory: dict[str, Any] = {}
    if "W1" in workloads:
        for mode in modes:
            outcome = await run_bot(
                mode,
                [("W1", "a", sizes.memory_events)],
                sink_port=sink_port,
                pg_dsn=None,
                workdir=workdir,
                tag=f"mem-{mode.name}",
                timeout=timeout * 3,
            )
            run = outcome["runs"].get("W1a", {})
            memory[mode.name] = {
                "events": sizes.memory_events,
                "rss_peak_kb": run.get("rss_peak_kb"),
                "rss_kb": run.get("rss_kb"),
                "error": outcome["error"],
            }
            progress(f"memory {mode.name:<13} peak RSS {run.get('rss_peak_kb', 0) / 1024:.1f} MiB")
    return {"rounds": rounds, "memory": memory}


def summarise(raw: dict[str, Any], modes: list[Mode], workloads: list[str]) -> dict[str, Any]:
    """Per mode and workload+path: median ratio to the same round's baseline, min, max."""
    table: dict[str, dict[str, Any]] = {}
    for mode in modes:
        per: dict[str, Any] = {}
        for workload in workloads:
            for path in PATHS:
                key = workload + path
                ratios, cpu_ratios, rates, cpu_us, gc_us, export_us = [], [], [], [], [], []
                for current in raw["rounds"]:
                    base = current.get("baseline", {}).get("runs", {}).get(key)
                    mine = current.get(mode.name, {}).get("runs", {}).get(key)
                    if not base or not mine or not base["throughput"]:
                        continue
                    ratios.append(mine["throughput"] / base["throughput"])
                    if base["cpu_throughput"]:
                        cpu_ratios.append(mine["cpu_throughput"] / base["cpu_throughput"])
                    rates.append(mine["throughput"])
                    cpu_us.append(mine["cpu"] / mine["events"] * 1e6)
                    gc_us.append(mine.get("gc_s", 0.0) / mine["events"] * 1e6)
                    threads = mine.get("thread_cpu", {})
                    export_us.append(threads.get(SPAN_EXPORT_THREAD, 0.0) / mine["events"] * 1e6)
                quartiles = (
                    statistics.quantiles(ratios, n=4, method="inclusive")
                    if len(ratios) >= 2
                    else [ratios[0]] * 3
                    if ratios
                    else [None] * 3
                )
                per[key] = {
                    "ratio": statistics.median(ratios) if ratios else None,
                    "q1": quartiles[0],
                    "q3": quartiles[2],
                    "min": min(ratios) if ratios else None,
                    "max": max(ratios) if ratios else None,
                    "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
                    "throughput": statistics.median(rates) if rates else None,
                    "cpu_us_per_event": statistics.median(cpu_us) if cpu_us else None,
                    "gc_us_per_event": statistics.median(gc_us) if gc_us else None,
                    "export_us_per_event": statistics.median(export_us) if export_us else None,
                    "n": len(ratios),
                }
        starts = [
            current[mode.name]["startup_s"]
            for current in raw["rounds"]
            if mode.name in current and "startup_s" in current[mode.name]
        ]
        base_starts = [
            current["baseline"]["startup_s"]
            for current in raw["rounds"]
            if "baseline" in current and "startup_s" in current["baseline"]
        ]
        per["startup_s"] = statistics.median(starts) if starts else None
        per["startup_over_baseline_s"] = (
            statistics.median(starts) - statistics.median(base_starts)
            if starts and base_starts
            else None
        )
        instrumented = [
            current[mode.name].get("instrumented")
            for current in raw["rounds"]
            if mode.name in current
        ]
        per["instrumented"] = any(bool(x) for x in instrumented)
        errors = [
            current[mode.name]["error"]
            for current in raw["rounds"]
            if mode.name in current and current[mode.name]["error"]
        ]
        per["errors"] = errors
        mem = raw["memory"].get(mode.name, {})
        base_mem = raw["memory"].get("baseline", {})
        if mem.get("rss_peak_kb") and base_mem.get("rss_peak_kb"):
            per["rss_peak_mb"] = mem["rss_peak_kb"] / 1024
            per["rss_over_baseline_mb"] = (mem["rss_peak_kb"] - base_mem["rss_peak_kb"]) / 1024
        table[mode.name] = per
    return table


def compile_bytecode() -> int:
    """Byte-compile discord-otel and the OpenTelemetry packages where their ``.pyc``
    files are missing or stale, as ``pip install`` does for a wheel; the number of
    files written.

    With ``PYTHONDONTWRITEBYTECODE`` set (this machine's environment sets it) an
    editable install never gets its ``.pyc`` files, so every bot start would
    compile discord-otel's ~35 modules from source (~50 ms here): a start-up cost
    no installed wheel has, and one the bot alone never pays for discord.py.
    ``py_compile`` writes them whatever that variable says."""
    import compileall
    import importlib.util

    written = 0
    for package in ("discord_otel", "opentelemetry"):
        spec = importlib.util.find_spec(package)
        for root in [] if spec is None else spec.submodule_search_locations or []:
            before = _bytecode_files(Path(root))
            compileall.compile_dir(root, quiet=2)
            written += len(_bytecode_files(Path(root)) - before)
    return written


def _bytecode_files(root: Path) -> set[tuple[str, float]]:
    return {(str(p), p.stat().st_mtime) for p in root.rglob("*.pyc")}


def workdir_for(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="discord-otel-bench-"))
