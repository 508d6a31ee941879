"""RESULTS.md, ratios.png and the console table, from the harness's raw results."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import timeit
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# Throughput relative to baseline (issue 6). Peers have no budget of their own.
BUDGET: dict[str, dict[str, float]] = {
    "sdk_disabled": {"W1": 0.99, "W2": 0.99, "W3": 0.99},
    "metrics": {"W1": 0.97, "W2": 0.95, "W3": 0.98},
    "default100": {"W1": 0.90, "W2": 0.80, "W3": 0.97},
    "default10": {"W1": 0.95, "W2": 0.92, "W3": 0.98},
}
MEMORY_BUDGET_MB = 25.0
STARTUP_BUDGET_S = 0.5
PATH_NAMES = {"a": "loopback (simulator, bot in its own process)", "b": "in-process feed"}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _otlp_encoder() -> str:
    """Which OTLP span encoder discord-otel's modes use here (see otlp_encoding.py)."""
    try:
        from discord_otel import otlp_encoding
    except ImportError:
        return "unknown"
    # the bots get no OTEL_* variable but the modes' own (harness._clean_env): the
    # default setting, so what was built decides
    return "compiled (C half built)" if otlp_encoding._built else "pure Python (C half not built)"


def calibrate() -> float:
    """Milliseconds a fixed pure-Python loop takes now (best of five): the same
    number on the same machine means the same speed, whatever else the run shows."""

    def fixed_work() -> int:
        total = 0
        for i in range(200_000):
            total += i * i % 7
        return total

    return min(timeit.repeat(fixed_work, number=1, repeat=5)) * 1000


# A calibration after the run this much slower (or faster) than before it: the
# machine's speed changed under the run, and so may the ratios.
CALIBRATION_DRIFT = 1.3


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "otlp_encoder": _otlp_encoder(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            name: _version(name)
            for name in (
                "discord.py",
                "opentelemetry-sdk",
                "opentelemetry-instrumentation",
                "discord-otel",
                "argus-dpy",
                "discord-ext-prometheus",
                "asyncpg",
                "aiohttp",
            )
        },
    }


def mode_table(
    columns: list[str],
    rows: Iterable[tuple[str, list[Any]]],
    cell: Callable[[Any], str] = str,
) -> list[str]:
    """A markdown table with a row per mode: ``cell`` formats each value, None is n/a."""
    lines = ["| mode | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, values in rows:
        cells = ["n/a" if value is None else cell(value) for value in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def verdicts(raw: dict[str, Any], workloads: list[str]) -> list[tuple[str, str, bool | None]]:
    """(what, detail, passed) for every budget line; passed None when not measured.

    Throughput budgets are judged on the loopback path (a), the bot as deployed;
    the in-process path (b) is the CPU-only view that explains them.
    """
    summary = raw["summary"]
    out: list[tuple[str, str, bool | None]] = []
    for mode, limits in BUDGET.items():
        if mode not in summary:
            continue
        for workload in workloads:
            cell = summary[mode].get(workload + "a", {})
            ratio = cell.get("ratio")
            limit = limits[workload]
            passed = None if ratio is None else ratio >= limit
            cpu = cell.get("cpu_ratio")
            cpu_note = (
                ""
                if cpu is None
                else f"; CPU-time {cpu:.3f}" + (" (passes)" if cpu >= limit else " (misses)")
            )
            out.append(
                (
                    f"{mode} {workload}",
                    f"{_cell(cell)} (>= {limit:.2f}){cpu_note}",
                    passed,
                )
            )
    for mode, cell in summary.items():
        if mode == "baseline":
            continue
        over = cell.get("rss_over_baseline_mb")
        if mode in BUDGET and over is not None:
            out.append(
                (
                    f"{mode} memory",
                    f"{over:+.1f} MB (<= +{MEMORY_BUDGET_MB:.0f})",
                    over <= MEMORY_BUDGET_MB,
                )
            )
        start = cell.get("startup_over_baseline_s")
        if mode in BUDGET and start is not None:
            out.append(
                (
                    f"{mode} start-up",
                    f"{start:+.2f} s (<= +{STARTUP_BUDGET_S})",
                    start <= STARTUP_BUDGET_S,
                )
            )
    ours = summary.get("metrics", {})
    for peer in ("argus", "prometheus"):
        if peer not in summary or not ours:
            continue
        for workload in ("W1", "W2"):
            if workload not in workloads:
                continue
            mine = ours.get(workload + "a", {}).get("ratio")
            theirs = summary[peer].get(workload + "a", {}).get("ratio")
            passed = None if mine is None or theirs is None else mine > theirs
            out.append(
                (
                    f"metrics-only cheaper than {peer} on {workload}",
                    f"{_fmt(mine)} vs {_fmt(theirs)}",
                    passed,
                )
            )
    return out


def _cell(cell: dict[str, Any]) -> str:
    """median [interquartile range] (min-max)"""
    low, high = _fmt(cell.get("min"), 2), _fmt(cell.get("max"), 2)
    if cell.get("q1") is None:
        return f"{_fmt(cell.get('ratio'))} ({low}-{high})"
    q1, q3 = _fmt(cell.get("q1"), 2), _fmt(cell.get("q3"), 2)
    return f"{_fmt(cell.get('ratio'))} [{q1}-{q3}] ({low}-{high})"


def _each_run(raw: dict[str, Any], field: str) -> list[Any]:
    """``field`` of every bot run of every round that has it."""
    return [
        outcome[field]
        for current in raw["rounds"]
        for outcome in current.values()
        if outcome.get(field)
    ]


WAITED = 0.6  # a run's wall-clock rate over its CPU-time rate below which the bot waited


def _waits(raw: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per workload and path: how many runs had the bot waiting, of how many."""
    found: dict[str, tuple[int, int]] = {}
    for current in raw["rounds"]:
        for outcome in current.values():
            for key, run in outcome.get("runs", {}).items():
                if not run.get("cpu_throughput"):
                    continue
                count, total = found.get(key, (0, 0))
                waited = run["throughput"] / run["cpu_throughput"] < WAITED
                found[key] = (count + waited, total + 1)
    return dict(sorted(found.items()))


def _mark(passed: bool | None) -> str:
    return {True: "PASS", False: "**FAIL**", None: "n/a"}[passed]


def markdown(raw: dict[str, Any], modes: list[Any], workloads: list[str]) -> str:
    meta = raw["meta"]
    summary = raw["summary"]
    lines = ["# discord-otel benchmark results", ""]
    lines.append(
        "Throughput of a discord.py bot relative to the same bot with no OpenTelemetry "
        "(baseline), measured side by side: every round runs each mode once, interleaved "
        "(rotated order), and a mode's ratio in a round is its events/s over that "
        "round's baseline. Cells: median ratio over rounds [interquartile range] (min-max). "
        "Produced by "
        f"`python -m benchmarks{' --quick' if meta['preset'] == 'quick' else ''}` "
        "(see benchmarks/README.md)."
    )
    lines += ["", "## Machine", ""]
    lines.append(f"- date: {meta['date']}; run took {meta['elapsed_s'] / 60:.1f} min")
    lines.append(f"- {meta['cores']} cores, {meta['cpu']}; Python {meta['python']}")
    lines.append(
        "- " + ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    )
    load = meta.get("load_before") or []
    load_after = meta.get("load_after") or []
    lines.append(
        f"- load average before {', '.join(f'{x:.2f}' for x in load)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}"
    )
    during = [load[0] for load in _each_run(raw, "load")]
    if during:
        lines.append(
            f"- 1-minute load average between bot runs: median {statistics.median(during):.2f}, "
            f"max {max(during):.2f} (2 cores; the benchmark itself keeps about 1-1.5 busy)"
        )
    others = meta.get("others_cpu_share")
    if others is not None:
        lines.append(
            f"- CPU used by processes other than the benchmark's during the run: "
            f"{others * 100:.0f}% of the machine's cores (from /proc/stat minus the harness "
            "and its children; the PostgreSQL server counts as other)"
        )
    calibration = meta.get("calibration_ms")
    drifted = False
    if calibration and len(calibration) == 2 and min(calibration) > 0:
        before_ms, after_ms = calibration
        drifted = max(before_ms, after_ms) / min(before_ms, after_ms) > CALIBRATION_DRIFT
        lines.append(
            f"- machine speed: a fixed pure-Python loop took {before_ms:.1f} ms before the run and "
            f"{after_ms:.1f} ms after it (compare with other runs' figures: a slower machine "
            "shows here before it shows in the ratios)"
            + (" -- **the speed changed during this run**" if drifted else "")
        )
    waited = _waits(raw)
    if waited:
        lines.append(
            "- runs where the bot waited (wall-clock rate under 0.6 of what its CPU time "
            "allows: something else held it up, e.g. the simulator): "
            + ", ".join(f"{key} {count} of {total}" for key, (count, total) in waited.items())
        )
    speeds = _each_run(raw, "speed_ms")
    if speeds:
        lines.append(
            f"- the same loop before each bot run: {min(speeds):.1f} to {max(speeds):.1f} ms "
            f"(median {statistics.median(speeds):.1f}; `speed_ms` of each run in results.json)"
        )
    if meta.get("otlp_encoder"):
        lines.append(f"- discord-otel's OTLP span encoder: {meta['otlp_encoder']}")
    busy = drifted or (others or 0) > 0.15 or max(load + load_after + during, default=0) > 2.5
    if busy:
        lines.append(
            "- **the machine was loaded or changed speed during this run** (other work on "
            "the same 2 cores or host): absolute rates drift; ratios are interleaved per "
            "round to compensate, and the spread shows what is left."
        )
    lines.append(
        f"- preset `{meta['preset']}`: {meta['rounds']} round(s); events per run "
        + ", ".join(f"{w} {n}" for w, n in meta["events"].items() if w in workloads)
        + f"; memory pass {meta['memory_events']} W1 events; PostgreSQL for W2: "
        + ("yes" if meta.get("database") else "no")
    )
    lines.append(
        "- the bot, the simulator (harness process) and the OTLP receiver are separate "
        "processes sharing the 2 cores; exporters send OTLP/HTTP to the receiver "
        "(it counts bytes, decodes nothing); metric export interval 5 s."
    )
    instrumented = {m.name: summary[m.name].get("instrumented") for m in modes}
    missing = [n for n, v in instrumented.items() if n in BUDGET and n != "sdk_disabled" and not v]
    if missing:
        lines += [
            "",
            "> **discord-otel's discord.py instrumentation was not active** in: "
            + ", ".join(missing)
            + " (no discord.py hook found in the bot process), so those modes measured the "
            "SDK, the exporters and the other instrumentations only.",
        ]
    for path in ("a", "b"):
        lines += ["", f"## Throughput ratios, {PATH_NAMES[path]}", ""]
        header = "| mode | " + " | ".join(workloads) + " | events/s " + "/".join(workloads) + " |"
        lines.append(header)
        lines.append("|---" * (len(workloads) + 2) + "|")
        for mode in modes:
            cells = []
            rates = []
            for workload in workloads:
                cell = summary[mode.name].get(workload + path, {})
                if mode.name == "baseline":
                    cells.append("1")
                else:
                    cells.append(_cell(cell))
                rates.append(_fmt(cell.get("throughput"), 0))
            lines.append(
                f"| {mode.label} | " + " | ".join(cells) + " | " + " / ".join(rates) + " |"
            )
    lines += [
        "",
        "CPU-time view (loopback path): events per CPU-second of the bot process "
        "(all its threads, exporters included), relative to baseline:",
        "",
    ]
    lines.append("| mode | " + " | ".join(workloads) + " |")
    lines.append("|---" * (len(workloads) + 1) + "|")
    for mode in modes:
        if mode.name == "baseline":
            continue
        cells = [_fmt(summary[mode.name].get(w + "a", {}).get("cpu_ratio")) for w in workloads]
        lines.append(f"| {mode.label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Budget (loopback path)",
        "",
        "| check | measured | verdict |",
        "|---|---|---|",
    ]
    for what, detail, passed in verdicts(raw, workloads):
        lines.append(f"| {what} | {detail} | {_mark(passed)} |")
    lines += ["", "## Memory and start-up", ""]
    lines.append(
        "| mode | peak RSS after memory pass (MB) | over baseline (MB) | start-up to READY (s) "
        "| over baseline (s) | discord.py hooks active |"
    )
    lines.append("|---|---|---|---|---|---|")
    for mode in modes:
        cell = summary[mode.name]
        lines.append(
            f"| {mode.label} | {_fmt(cell.get('rss_peak_mb'), 1)} | "
            f"{_fmt(cell.get('rss_over_baseline_mb'), 1)} | {_fmt(cell.get('startup_s'), 2)} | "
            f"{_fmt(cell.get('startup_over_baseline_s'), 2)} | "
            f"{'yes' if cell.get('instrumented') else 'no'} |"
        )
    micro = raw.get("micro")
    base = summary.get("baseline", {})
    lines += ["", "## Micro costs", ""]
    lines.append(
        "Bot CPU per event (process CPU time / events, all threads; median over rounds), "
        "in us: the baseline row is discord.py alone, the others what each mode adds to it. "
        "`gc` is the part of the baseline spent in the cyclic garbage collector, and what "
        "each mode adds to that (a gc.callbacks clock in the bot)."
    )
    lines.append("")
    keys = [w + p for p in ("b", "a") for w in workloads]
    lines.append("| mode | " + " | ".join(f"{k} cpu / gc" for k in keys) + " |")
    lines.append("|---" * (len(keys) + 1) + "|")
    for mode in modes:
        cells = []
        for key in keys:
            mine = summary[mode.name].get(key, {})
            ref = base.get(key, {})
            cpu, gc_us = mine.get("cpu_us_per_event"), mine.get("gc_us_per_event")
            if cpu is None or gc_us is None:
                cells.append("n/a")
            elif mode.name == "baseline":
                cells.append(f"{cpu:.1f} / {gc_us:.1f}")
            else:
                cells.append(
                    f"{cpu - (ref.get('cpu_us_per_event') or 0):+.1f} / "
                    f"{gc_us - (ref.get('gc_us_per_event') or 0):+.1f}"
                )
        lines.append(f"| {mode.label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(b: in-process feed, a: loopback; W2 is per command, REST reply included.)")
    exported = [
        mode
        for mode in modes
        if any(summary[mode.name].get(k, {}).get("export_us_per_event") for k in keys)
    ]
    if exported:
        lines += [
            "",
            "Of that, CPU of the span exporter thread (scrubbing, OTLP encoding, HTTP), us per "
            "event:",
            "",
        ]
        lines += mode_table(
            keys,
            (
                (
                    mode.label,
                    [summary[mode.name].get(k, {}).get("export_us_per_event") for k in keys],
                )
                for mode in exported
            ),
            lambda value: f"{value:.1f}",
        )
    if micro:
        lines += ["", "OpenTelemetry SDK operations on this machine (median of 5, us each):", ""]
        lines.append("| operation | us |")
        lines.append("|---|---|")
        for name, value in micro.items():
            lines.append(f"| {name} | {value:.2f} |")
    notes = Path(__file__).resolve().parent / "diagnosis.md"
    if notes.exists() and meta.get("preset") == "full":
        lines += ["", notes.read_text().strip()]
    errors = [(m.name, e) for m in modes for e in summary[m.name].get("errors", [])]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {name}: {error}" for name, error in errors]
    lines.append("")
    return "\n".join(lines)


def console_table(raw: dict[str, Any], modes: list[Any], workloads: list[str]) -> str:
    summary = raw["summary"]
    rows = [f"{'mode':<14}" + "".join(f"{w + p:>32}" for p in ("a", "b") for w in workloads)]
    for mode in modes:
        cells = []
        for path in ("a", "b"):
            for workload in workloads:
                cell = summary[mode.name].get(workload + path, {})
                cells.append(_cell(cell))
        rows.append(f"{mode.name:<14}" + "".join(f"{c:>32}" for c in cells))
    for what, detail, passed in verdicts(raw, workloads):
        rows.append(f"{_mark(passed):>8}  {what}: {detail}")
    return "\n".join(rows)


def plot(raw: dict[str, Any], modes: list[Any], workloads: list[str], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = raw["summary"]
    shown = [m for m in modes if m.name != "baseline"]
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.6), sharey=True)
    if len(workloads) == 1:
        axes = [axes]
    width = 0.38
    for axis, workload in zip(axes, workloads, strict=True):
        xs = range(len(shown))
        for offset, path, color in ((-width / 2, "a", "#3b6ea8"), (width / 2, "b", "#9bbbe0")):
            values, lows, highs = [], [], []
            for mode in shown:
                cell = summary[mode.name].get(workload + path, {})
                ratio = cell.get("ratio") or 0.0
                values.append(ratio)
                lows.append(max(0.0, ratio - (cell.get("q1") or ratio)))
                highs.append(max(0.0, (cell.get("q3") or ratio) - ratio))
            axis.bar(
                [x + offset for x in xs],
                values,
                width,
                yerr=[lows, highs],
                color=color,
                capsize=2,
                label=PATH_NAMES[path].split(" (")[0],
            )
        for index, mode in enumerate(shown):
            limit = BUDGET.get(mode.name, {}).get(workload)
            if limit:
                axis.hlines(limit, index - 0.45, index + 0.45, colors="#c0392b", linewidth=2)
        axis.axhline(1.0, color="#555", linewidth=0.8, linestyle=":")
        axis.set_title(workload)
        axis.set_xticks(list(xs))
        axis.set_xticklabels([m.name for m in shown], rotation=40, ha="right", fontsize=8)
        axis.set_ylim(0, 1.15)
    axes[0].set_ylabel("throughput / baseline (median, interquartile range)")
    axes[0].plot([], [], color="#c0392b", linewidth=2, label="budget")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"discord-otel overhead ({raw['meta']['date']}, {raw['meta']['preset']} run)")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
