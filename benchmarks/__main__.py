"""``python -m benchmarks [--quick|--smoke]``: run the harness, write the report.

Writes ``results.json``, ``RESULTS.md`` and ``ratios.png`` into ``--out``
(default ``benchmarks/results``). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import harness, report
from benchmarks.postgres import postgres


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a short run (2 rounds, small counts)")
    size.add_argument("--smoke", action="store_true", help="tiny counts, one round (the test)")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--modes", help="comma-separated subset of: " + ",".join(m.name for m in harness.MODES)
    )
    parser.add_argument("--workloads", help="comma-separated subset of W1,W2,W3")
    parser.add_argument("--out", type=Path, default=harness.HERE / "results")
    parser.add_argument(
        "--span-census",
        metavar="MODE",
        help="instead of a run: count the spans MODE exports per event, per workload",
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="RESULTS_JSON",
        help="no run: rewrite RESULTS.md and ratios.png into --out from a results.json",
    )
    parser.add_argument("--memory-events", type=int, help="W1 events of the memory pass")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro costs")
    parser.add_argument("--no-plot", action="store_true", help="skip ratios.png")
    parser.add_argument("--no-db", action="store_true", help="W2 without PostgreSQL")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="instead of a run: Python function calls per event on the in-process path, "
        "per mode (cProfile call counts: deterministic, unlike time on a busy machine)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead of a run: CPU instructions per event on the in-process path, per "
        "mode (valgrind's callgrind: repeats to within about 1%%, unlike time)",
    )
    parser.add_argument(
        "--profile",
        metavar="MODE",
        help="instead of a run: profile the in-process path of MODE with pyinstrument "
        "(writes profile-MODE-W*.txt into --out)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_from:
        return rewrite_report(args)
    preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = harness.Sizes.preset(preset)
    if args.rounds:
        sizes.rounds = args.rounds
    if args.memory_events:
        sizes.memory_events = args.memory_events
    names = args.modes.split(",") if args.modes else [m.name for m in harness.MODES]
    if "baseline" not in names:
        names.insert(0, "baseline")
    modes = [harness.MODE_BY_NAME[n] for n in names]
    workloads = args.workloads.split(",") if args.workloads else list(harness.WORKLOADS)
    workdir = harness.workdir_for(args.out)
    if args.profile:
        return profile(args, sizes, workloads, workdir)
    if args.calls:
        return calls(args, sizes, modes, workloads, workdir)
    if args.instructions:
        return instructions(
            args,
            INSTRUCTION_EVENTS[preset],
            INSTRUCTION_PAIRS.get(preset, {}),
            modes,
            workloads,
            workdir,
        )
    if args.span_census:
        return span_census(args, sizes, workloads, workdir)
    compiled = harness.compile_bytecode()
    if compiled:
        print(f"benchmarks: byte-compiled {compiled} stale or missing .pyc files", flush=True)
    began = time.time()
    load_before = harness._load()
    busy_before = _cpu_accounting()
    calibration_before = report.calibrate()
    print(f"benchmarks: {preset} run, {sizes.rounds} round(s), work files in {workdir}", flush=True)

    def progress(line: str) -> None:
        print(line, flush=True)

    micro = None
    if not args.no_micro:
        from benchmarks import micro as micro_module

        micro = micro_module.run_isolated(sizes.micro_n)
        progress("micro costs: " + ", ".join(f"{k} {v:.2f}us" for k, v in micro.items()))
    try:
        with harness.otlp_sink(workdir) as sink_port:
            db = postgres() if not args.no_db and "W2" in workloads else _nothing()
            with db as dsn:
                raw = asyncio.run(
                    harness.run_all(
                        sizes,
                        modes,
                        workloads,
                        sink_port=sink_port,
                        pg_dsn=dsn,
                        workdir=workdir,
                        progress=progress,
                        machine_speed=report.calibrate,
                    )
                )
        raw["meta"] = report.machine_info()
        raw["meta"].update(
            {
                "preset": preset,
                "rounds": sizes.rounds,
                "events": sizes.events,
                "memory_events": sizes.memory_events,
                "started": began,
                "elapsed_s": time.time() - began,
                "load_before": load_before,
                "load_after": harness._load(),
                "others_cpu_share": _others_share(busy_before, _cpu_accounting()),
                "calibration_ms": [calibration_before, report.calibrate()],
                "database": bool(dsn),
                "modes": [m.name for m in modes],
                "workloads": workloads,
            }
        )
        raw["micro"] = micro
        raw["summary"] = harness.summarise(raw, modes, workloads)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
        (args.out / "RESULTS.md").write_text(report.markdown(raw, modes, workloads))
        if not args.no_plot:
            report.plot(raw, modes, workloads, args.out / "ratios.png")
        print(report.console_table(raw, modes, workloads))
        print(f"benchmarks: wrote {args.out / 'RESULTS.md'}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def rewrite_report(args: argparse.Namespace) -> int:
    raw = json.loads(args.report_from.read_text())
    modes = [harness.MODE_BY_NAME[name] for name in raw["meta"]["modes"]]
    workloads = list(raw["meta"]["workloads"])
    raw["summary"] = harness.summarise(raw, modes, workloads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_from.resolve() != (args.out / "results.json").resolve():
        (args.out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    else:
        args.report_from.write_text(json.dumps(raw, indent=1, default=str))
    (args.out / "RESULTS.md").write_text(report.markdown(raw, modes, workloads))
    if not args.no_plot:
        report.plot(raw, modes, workloads, args.out / "ratios.png")
    print(report.console_table(raw, modes, workloads))
    return 0


def _cpu_accounting() -> tuple[float, float, float]:
    """(machine busy CPU seconds, this process + its reaped children's CPU seconds, now)."""
    import os
    import resource

    busy = 0.0
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return busy, ours, time.monotonic()


def _others_share(
    before: tuple[float, float, float], after: tuple[float, float, float]
) -> float | None:
    """Share of the machine's cores that processes other than the benchmark's used."""
    import os

    wall = after[2] - before[2]
    if wall <= 0 or before[0] == 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others) / (wall * (os.cpu_count() or 1))


def profile(
    args: argparse.Namespace, sizes: harness.Sizes, workloads: list[str], workdir: Path
) -> int:
    mode = harness.MODE_BY_NAME[args.profile]
    prefix = (args.out / f"profile-{mode.name}").resolve()
    plan = [(w, p, sizes.events[w]) for p in harness.PATHS for w in workloads]
    try:
        with harness.otlp_sink(workdir) as sink_port:
            db = postgres() if not args.no_db and "W2" in workloads else _nothing()
            with db as dsn:
                outcome = asyncio.run(
                    harness.run_bot(
                        mode,
                        plan,
                        sink_port=sink_port,
                        pg_dsn=dsn,
                        workdir=workdir,
                        tag="profile",
                        timeout=300,
                        extra_env={"BENCH_PROFILE": str(prefix), "BENCH_CENSUS": "1"},
                    )
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for key, run in outcome["runs"].items():
        print(f"{mode.name} {key}: {run['throughput']:.0f} events/s (under the profiler)")
        print(f"  GC: {run['gc_s']:.3f}s in {run['gc_collections']} collections; tracked objects:")
        print("  " + ", ".join(f"{name} {count}" for name, count in run.get("census", [])))
        print("  garbage in cycles at the end:")
        print("  " + ", ".join(f"{name} {count}" for name, count in run.get("garbage", [])))
    if outcome["error"]:
        print(outcome["error"], outcome.get("log_tail", ""))
        return 1
    print(f"profiles: {prefix}-W*.txt")
    return 0


def calls(
    args: argparse.Namespace,
    sizes: harness.Sizes,
    modes: list[harness.Mode],
    workloads: list[str],
    workdir: Path,
) -> int:
    """Python function calls per event, per mode and workload (in-process path)."""
    import pstats

    per_event: dict[str, dict[str, float]] = {}
    try:
        with harness.otlp_sink(workdir) as sink_port:
            db = postgres() if not args.no_db and "W2" in workloads else _nothing()
            with db as dsn:
                for mode in modes:
                    prefix = workdir / f"calls-{mode.name}"
                    outcome = asyncio.run(
                        harness.run_bot(
                            mode,
                            [(w, "b", sizes.events[w]) for w in workloads],
                            sink_port=sink_port,
                            pg_dsn=dsn,
                            workdir=workdir,
                            tag="calls",
                            timeout=600,
                            extra_env={"BENCH_CPROFILE": str(prefix)},
                        )
                    )
                    if outcome["error"]:
                        print(mode.name, outcome["error"], outcome.get("log_tail", ""))
                        return 1
                    for key, run in outcome["runs"].items():
                        stats = pstats.Stats(f"{prefix}-{key}.pstat").stats
                        total = sum(entry[1] for entry in stats.values())
                        per_event.setdefault(mode.name, {})[key[:-1]] = total / run["events"]
                    print(f"{mode.name}: done", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = per_event.get("baseline", {})

    def cell(mode: harness.Mode, workload: str) -> str | None:
        value = per_event.get(mode.name, {}).get(workload)
        if value is None:
            return None
        ref = base.get(workload)
        relative = f" ({value / ref:.2f})" if ref and mode.name != "baseline" else ""
        return f"{value:.0f}{relative}"

    lines = [
        "Python function calls per event, in-process path (cProfile counts; "
        "W2 per command, REST reply included), and relative to the bot alone:",
        "",
    ]
    lines += report.mode_table(
        workloads, ((mode.label, [cell(mode, w) for w in workloads]) for mode in modes)
    )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "CALLS.md").write_text(text)
    return 0


# --instructions: events of the two runs (N1, N2) per workload, per preset. A pair
# takes about 1 min at full size (the bot runs some 50 times slower under valgrind).
INSTRUCTION_EVENTS: dict[str, dict[str, tuple[int, int]]] = {
    "full": {"W1": (2000, 12000), "W2": (200, 1200), "W3": (5000, 30000)},
    "quick": {"W1": (1000, 5000), "W2": (100, 500), "W3": (2000, 10000)},
    "smoke": {"W1": (200, 1000), "W2": (20, 100), "W3": (400, 2000)},
}
# W2 counts move by up to ~1% from one pair of runs to the next (how the simulator's and
# PostgreSQL's answers, not under valgrind, interleave with the bot's event loop): a
# W2 count is the median of this many pairs (W1 and W3 repeat to within ~0.3%).
INSTRUCTION_PAIRS: dict[str, dict[str, int]] = {"full": {"W2": 3}, "quick": {"W2": 3}}
# Under valgrind the 5 s metric export interval of the timed runs would fire some 50
# times as often per event as at full speed: these runs leave metric exports out. The
# same holds for the span and log batch processors' 5 s schedule delay: at full speed a
# sampled bot fills a batch of 512 spans long before it, under valgrind a timer export
# carries a dozen and its fixed cost (an HTTP request) is counted dozens of times over
# (W2 at 10%: the export thread's ~10,700 instructions per command were ~3,600 without
# it). With the delay out of the way, a batch leaves when 512 spans are queued, and at
# the end, as at full speed.
# Without .pyc writes, a module compiled in one run of a pair is compiled in the other.
# A fixed hash seed: the same set and dict layouts in every run (with a random seed a
# count moves by up to about 1% from run to run, with this one by about 0.2%), and a
# fixed random seed: the SDK's trace ids, hence which events 10% sampling keeps.
INSTRUCTIONS_ENV = {
    "BENCH_RANDOM_SEED": "6",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    "OTEL_BSP_SCHEDULE_DELAY": "600000",
    "OTEL_BLRP_SCHEDULE_DELAY": "600000",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
CALLGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--trace-children=yes",  # opentelemetry-instrument execs python: follow it
    "--dump-instr=no",
    "-q",
]


def instructions(
    args: argparse.Namespace,
    events: dict[str, tuple[int, int]],
    pairs: dict[str, int],
    modes: list[harness.Mode],
    workloads: list[str],
    workdir: Path,
) -> int:
    """CPU instructions per event, per mode and workload (in-process path, callgrind).

    Two bot processes per mode and workload, N1 and N2 events: the difference of their
    instruction counts over the difference of the events fed cancels start-up and exit
    (and loading the pre-built frames: the smaller run loads the larger one's number).
    """
    if shutil.which("valgrind") is None:
        shutil.rmtree(workdir, ignore_errors=True)
        print(
            "--instructions needs valgrind (its callgrind tool counts the instructions); "
            "it is not on PATH: install it, e.g. apt-get install valgrind",
            file=sys.stderr,
        )
        return 2
    per_event: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, list[float]]] = {}  # every pair's count, when several
    try:
        with harness.otlp_sink(workdir) as sink_port:
            db = postgres() if not args.no_db and "W2" in workloads else _nothing()
            with db as dsn:
                for mode in modes:
                    for workload in workloads:
                        found = []
                        for _ in range(pairs.get(workload, 1)):
                            began = time.monotonic()
                            counts = [
                                _count_instructions(
                                    mode, workload, n, events[workload][1], sink_port, dsn, workdir
                                )
                                for n in events[workload]
                            ]
                            (n1, ir1), (n2, ir2) = counts
                            found.append((ir2 - ir1) / (n2 - n1))
                            print(
                                f"{mode.name} {workload}: {ir1:,} instructions for {n1} events, "
                                f"{ir2:,} for {n2}: {found[-1]:,.0f} per event "
                                f"({time.monotonic() - began:.0f}s)",
                                flush=True,
                            )
                        per_event.setdefault(mode.name, {})[workload] = statistics.median(found)
                        if len(found) > 1:
                            spread.setdefault(mode.name, {})[workload] = found
    except InstructionsError as exc:
        print(f"--instructions: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = instructions_report(per_event, events, modes, workloads, _valgrind_version(), spread)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "INSTRUCTIONS.md").write_text(text)
    return 0


class InstructionsError(RuntimeError):
    """A callgrind run that cannot be counted (the bot failed, or left no count)."""


def _count_instructions(
    mode: harness.Mode,
    workload: str,
    events: int,
    loaded: int,
    sink_port: int,
    dsn: str | None,
    workdir: Path,
) -> tuple[int, int]:
    """(events fed, warm-up included; instructions the bot process ran) for one run.

    The bot loads the frames of a run of ``loaded`` events whatever ``events`` is: an
    in-process run reads them all from a file at start-up (some 20,000-45,000
    instructions per frame), which would otherwise count as a cost per event.
    """
    fed = events + harness.warmup_events(events)
    out = workdir / f"callgrind-{mode.name}-{workload}-{events}"
    for earlier in workdir.glob(out.name + ".*"):  # an earlier pair's: counted already
        earlier.unlink()
    outcome = asyncio.run(
        harness.run_bot(
            mode,
            [(workload, "b", events)],
            sink_port=sink_port,
            pg_dsn=dsn,
            workdir=workdir,
            tag=out.name,
            timeout=1800,
            extra_env=INSTRUCTIONS_ENV,
            command_prefix=[*CALLGRIND, f"--callgrind-out-file={out}.%p"],
            ready_timeout=600,
            stop_grace=600,
            ballast={workload: loaded + harness.warmup_events(loaded) - fed},
        )
    )
    run = outcome["runs"].get(workload + "b", {})
    if outcome["error"] or not run.get("complete") or outcome["exit_status"] != 0:
        raise InstructionsError(
            f"{mode.name} {workload} ({events} events): {outcome['error'] or 'incomplete'}, "
            f"exit status {outcome['exit_status']}\n{outcome.get('log_tail', '')}"
        )
    return fed, _bot_instructions(out)


def _bot_instructions(out: Path) -> int:
    """Instructions in the callgrind files of the bot (``out.<pid>`` whose cmd is bot.py)."""
    total, found = 0, False
    for path in out.parent.glob(out.name + ".*"):
        header = dict(
            line.split(":", 1)
            for line in path.read_text(errors="replace").splitlines()
            if line.startswith(("cmd:", "summary:"))
        )
        if "bot.py" in header.get("cmd", "") and "summary" in header:
            total += int(header["summary"].split()[0])
            found = True
    if not found:
        raise InstructionsError(f"no callgrind file of bot.py at {out}.*")
    return total


def _valgrind_version() -> str:
    done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "valgrind"


def instructions_report(
    per_event: dict[str, dict[str, float]],
    events: dict[str, tuple[int, int]],
    modes: list[harness.Mode],
    workloads: list[str],
    valgrind: str,
    spread: dict[str, dict[str, list[float]]] | None = None,
) -> str:
    """INSTRUCTIONS.md: instructions per event and ratio, then the throughput it implies.
    ``spread``: every pair's count where a cell is the median of several."""
    base = per_event.get("baseline", {})

    def ratio(mode: harness.Mode, workload: str) -> float | None:
        value, ref = per_event.get(mode.name, {}).get(workload), base.get(workload)
        return value / ref if value and ref else None

    def count_cell(mode: harness.Mode, workload: str) -> str | None:
        value, relative = per_event.get(mode.name, {}).get(workload), ratio(mode, workload)
        if value is None:
            return None
        return f"{value:,.0f}" + (f" ({relative:.3f})" if mode.name != "baseline" else "")

    def throughput_cell(mode: harness.Mode, workload: str) -> str | None:
        relative = ratio(mode, workload)
        if relative is None:
            return None
        limit = report.BUDGET.get(mode.name, {}).get(workload)
        if limit is None:
            return f"{1 / relative:.3f}"
        verdict = "within" if 1 / relative >= limit else "over"
        return f"{1 / relative:.3f} (budget >= {limit:.2f}: {verdict})"

    sizes = ", ".join(f"{w} {events[w][0]:,} and {events[w][1]:,}" for w in workloads)
    lines = [
        "CPU instructions per event on the in-process path, counted by valgrind's callgrind "
        "in every thread of the bot process (span and log encoding included; W2 per "
        "command, REST reply included), and relative to the bot alone in brackets. Each "
        "is the difference between two runs over the difference in events fed "
        f"({sizes} events, warm-up added), so start-up and exit cancel out. Unlike time "
        "on a shared machine, the counts repeat to within about 1% (hash seed fixed, and "
        "random seeded: the 10% sampled mode keeps the same commands while the code is "
        "unchanged); where a cell is the median of several pairs of runs, their counts "
        "are listed below the table. They leave out cache "
        "misses, the exporters' wait on HTTP and metric exports: the metric export "
        "interval is 600 s in these runs, since under valgrind (some 50 times slower) "
        "a 5 s interval would export far more often per event than at full speed; so is "
        "the span and log batch processors' schedule delay, so that spans leave in "
        "batches of 512 (and at exit) as at full speed, not a dozen per timer export.",
        "",
        f"Measured {report.machine_info()['date']} with {valgrind}, "
        f"Python {platform.python_version()}.",
        "",
    ]
    lines += report.mode_table(
        workloads, ((mode.label, [count_cell(mode, w) for w in workloads]) for mode in modes)
    )
    for workload in workloads:
        repeated = [
            f"{mode.label} " + " / ".join(f"{count:,.0f}" for count in found)
            for mode in modes
            if (found := (spread or {}).get(mode.name, {}).get(workload))
        ]
        if repeated:
            lines += ["", f"{workload}, the median of each mode's pairs: {'; '.join(repeated)}."]
    lines += [
        "",
        "As a reading aid: the throughput relative to the bot alone that each ratio implies "
        "if the bot is CPU-bound and every instruction costs the same (1 / ratio), next to "
        "the issue's budget (which the timed runs of RESULTS.md judge, on the loopback "
        "path):",
        "",
    ]
    lines += report.mode_table(
        workloads,
        (
            (mode.label, [throughput_cell(mode, w) for w in workloads])
            for mode in modes
            if mode.name != "baseline"
        ),
    )
    return "\n".join(lines) + "\n"


def span_census(
    args: argparse.Namespace, sizes: harness.Sizes, workloads: list[str], workdir: Path
) -> int:
    """One bot process per workload (loopback path), the sink decoding span names."""
    mode = harness.MODE_BY_NAME[args.span_census]
    try:
        with harness.otlp_sink(workdir, decode=True) as sink_port:
            db = postgres() if not args.no_db and "W2" in workloads else _nothing()
            with db as dsn:
                for workload in workloads:
                    events = sizes.events[workload]
                    outcome = asyncio.run(
                        harness.run_bot(
                            mode,
                            [(workload, "a", events)],
                            sink_port=sink_port,
                            pg_dsn=dsn,
                            workdir=workdir,
                            tag=f"census-{workload}",
                            timeout=300,
                        )
                    )
                    names = outcome.get("exported", {}).get("span_names", {})
                    warm = max(10, min(events // 10, 1000))
                    total = events + warm
                    print(f"{mode.name} {workload}: {events}+{warm} warm-up events")
                    for name, count in sorted(names.items(), key=lambda kv: -kv[1]):
                        print(f"  {count / total:7.3f} per event  {name}")
                    if outcome["error"]:
                        print(outcome["error"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
