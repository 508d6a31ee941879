"""Smoke run of the benchmark harness: tiny counts, one round, every mode and
workload on both paths. Asserts a well-formed result, never a timing."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import harness

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("argus", "discord.ext.prometheus", "matplotlib")


def _missing() -> list[str]:
    missing = []
    for module in PEERS:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(module)
    return missing


@pytest.mark.slow
def test_smoke_run_covers_every_mode_and_workload(tmp_path: Path) -> None:
    if _missing():
        # What benchmarks/run.sh does: the peers and matplotlib, into this venv.
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-r", "benchmarks/requirements.txt"],
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
        importlib.invalidate_caches()
    missing = _missing()
    if missing:
        pytest.skip(
            f"benchmark requirements not installed ({', '.join(missing)}) and pip could "
            "not install them: pip install -r benchmarks/requirements.txt"
        )
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    raw = json.loads((out / "results.json").read_text())
    text = (out / "RESULTS.md").read_text()
    assert text.startswith("# discord-otel benchmark results")
    assert "- the same loop before each bot run: " in text
    assert "- runs where the bot waited " in text
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert raw["micro"], "micro costs missing"
    modes = [m.name for m in harness.MODES]
    assert set(raw["rounds"][0]) == set(modes)
    for name in modes:
        outcome = raw["rounds"][0][name]
        assert outcome["error"] is None, (name, outcome.get("log_tail"))
        assert outcome["startup_s"] > 0
        assert outcome["speed_ms"] > 0  # the machine's speed as this bot run began
        for workload in harness.WORKLOADS:
            for path in harness.PATHS:
                run = outcome["runs"][workload + path]
                assert run["complete"], (name, workload + path, run)
                assert run["wall"] > 0
                assert run["throughput"] > 0
        summary = raw["summary"][name]
        for key in ("W1a", "W1b", "W2a", "W2b", "W3a", "W3b"):
            assert summary[key]["ratio"] is not None, (name, key)
        assert raw["memory"][name]["rss_peak_kb"] > 0
    for name in ("default100", "default10"):
        assert raw["rounds"][0][name]["exported"]["traces"]["requests"] > 0


@pytest.mark.slow
def test_call_counts_show_which_modes_hook_discord_py(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--calls",
            "--smoke",
            "--modes",
            "sdk_disabled,metrics,metrics_python",
            "--workloads",
            "W1",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in (out / "CALLS.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| mode")
    }
    baseline = float(rows["baseline (plain python)"])
    disabled = float(rows["OTEL_SDK_DISABLED=true"].split()[0])
    metrics = float(rows["metrics only"].split()[0])
    python_label = "metrics only, pure-Python halves (OTEL_PYTHON_DISCORD_COMPILED=false)"
    python = float(rows[python_label].split()[0])
    # no hook at all with the SDK disabled; the Python metrics hooks time every
    # listener run, the compiled halves do it (and count the event) without a call
    assert abs(disabled - baseline) <= 0.02 * baseline
    assert python > baseline * 1.02
    assert metrics < python


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (callgrind)")
def test_instruction_counts_of_a_mode_without_hooks_match_the_bot_alone(tmp_path: Path) -> None:
    out = tmp_path / "instructions"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--instructions",
            "--smoke",
            "--modes",
            "sdk_disabled",
            "--workloads",
            "W3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = (out / "INSTRUCTIONS.md").read_text()
    counts = next(block for block in text.split("\n\n") if block.startswith("| mode"))
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in counts.splitlines()
        if line.startswith("| ") and not line.startswith("| mode")
    }
    baseline = float(rows["baseline (plain python)"].replace(",", ""))
    disabled = float(rows["OTEL_SDK_DISABLED=true"].split()[0].replace(",", ""))
    assert baseline > 10_000  # a gateway event parsed and dispatched, in instructions
    # No hook at all with the SDK disabled: the same instructions per event, give or
    # take the counts' own spread (at most 1.2% apart over six pairs of runs; the
    # distro's gc.freeze() can make SDK disabled a little the cheaper).
    assert abs(disabled - baseline) <= 0.03 * baseline
    assert "| OTEL_SDK_DISABLED=true | 0.9" in text or "| OTEL_SDK_DISABLED=true | 1.0" in text


def test_the_bot_starts_from_bytecode() -> None:
    # what a wheel installed by pip has: a current .pyc beside every module, also where
    # PYTHONDONTWRITEBYTECODE kept imports from writing them (an editable install)
    harness.compile_bytecode()
    spec = importlib.util.find_spec("discord_otel")
    assert spec is not None
    assert spec.submodule_search_locations
    sources = [p for root in spec.submodule_search_locations for p in Path(root).rglob("*.py")]
    assert len(sources) > 30
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.exists(), source
        assert cached.stat().st_mtime >= source.stat().st_mtime, source
    assert harness.compile_bytecode() == 0  # nothing left to write
