"""Every command and code block of README.md and docs/*.md, run or checked
(conventions in markdown.py and commands.py), plus the README's configuration
tables against the code and the links against the files."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from discord_otel import config, distro, semconv
from discord_otel import environment_variables as env_names
from tests.docs import commands
from tests.docs.markdown import (
    REPO,
    SHELL_LANGUAGES,
    Block,
    all_blocks,
    documents,
    links,
    shell_commands,
    table_rows,
)
from tests.fixtures.otlp_receiver import OtlpReceiver

BLOCKS = all_blocks()
KNOWN_KINDS = {"", "bot", "skip"}
PING_SCENARIO = "steps:\n  - message: '!ping'\n"
SHARED_CONTRACT = REPO.parent / "shared" / "TELEMETRY.md"


def _ids(blocks: list[Block]) -> list[str]:
    return [block.id for block in blocks]


SHELL = [b for b in BLOCKS if b.language in SHELL_LANGUAGES and b.kind != "skip"]
PYTHON = [b for b in BLOCKS if b.language == "python" and b.kind != "skip"]


def test_every_block_has_a_known_language_and_directive() -> None:
    for block in BLOCKS:
        assert block.language, f"{block.id}: tag the block (bash, python, yaml, text...)"
        assert block.kind in KNOWN_KINDS, f"{block.id}: unknown doc-test directive"
        if block.kind == "skip":
            assert len(block.directive.split()) > 1, f"{block.id}: a skip needs its reason"
    skips = [b.id for b in BLOCKS if b.kind == "skip"]
    assert len(skips) <= 2, f"keep skips rare: {skips}"


@pytest.mark.slow
@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_block(block: Block, otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    ctx = commands.Context(receiver=otlp_receiver, tmp=tmp_path)
    for argv in shell_commands(block.text):
        commands.run(argv, ctx)


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_compiles(block: Block) -> None:
    compile(block.text, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


BOTS = [b for b in PYTHON if b.kind == "bot"]


@pytest.mark.slow
@pytest.mark.parametrize("block", BOTS, ids=_ids(BOTS))
def test_python_bot_runs_against_the_simulator(
    block: Block, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text(block.text, encoding="utf-8")
    scenario = tmp_path / "ping.yaml"
    scenario.write_text(PING_SCENARIO, encoding="utf-8")
    wrapper = [block.options["wrapper"]] if "wrapper" in block.options else []
    argv = ["discord-otel", "simulate", "--scenario", str(scenario), "--"]
    argv += [*wrapper, "python", str(bot)]
    ctx = commands.Context(receiver=otlp_receiver, tmp=tmp_path)
    done = commands._execute(argv, ctx, {})
    assert done.returncode == 0, done.stdout[-3000:]
    expected = block.options["expect"]
    otlp_receiver.wait_for(
        lambda r: any(s.name == expected for s in r.spans()), what=f"a span {expected!r}"
    )


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.language in ("yaml", "yml", "json")], ids=str
)
def test_data_block_parses(block: Block) -> None:
    if block.language == "json":
        json.loads(block.text)
    else:
        yaml.safe_load(block.text)


# --- the configuration tables ---------------------------------------------------


def readme_defaults() -> dict[str, str]:
    """variable -> the README's default cell, from every table row naming variables."""
    found: dict[str, str] = {}
    for row in table_rows(REPO / "README.md"):
        if len(row) < 2 or not row[0].startswith("`OTEL_"):
            continue
        for name in row[0].replace("`", "").split(","):
            found[name.strip()] = row[1]
    return found


def format_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, frozenset):
        return f"`{','.join(sorted(value))}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def test_readme_documents_every_discord_setting_with_its_default() -> None:
    documented = {
        k: v for k, v in readme_defaults().items() if k.startswith("OTEL_PYTHON_DISCORD_")
    }
    settings = {setting.name: setting.default for setting in config.ALL_SETTINGS}
    names = {
        value
        for key, value in vars(env_names).items()
        if key.startswith("OTEL_PYTHON_DISCORD_") and isinstance(value, str)
    }
    assert names == set(settings), "environment_variables.py and config.ALL_SETTINGS disagree"
    missing = set(settings) - set(documented)
    assert not missing, f"README.md's configuration table lacks {sorted(missing)}"
    unknown = set(documented) - set(settings)
    assert not unknown, f"README.md documents settings that do not exist: {sorted(unknown)}"
    for name, default in settings.items():
        assert documented[name] == format_default(default), f"{name}'s default in README.md"


def test_readme_standard_defaults_are_the_distros() -> None:
    documented = readme_defaults()
    for name, value in distro.DEFAULTS.items():
        if name in documented:
            assert documented[name] == f"`{value}`", f"{name}'s default in README.md"
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME"):
        assert name in documented
    assert f"`{semconv.DEFAULT_SERVICE_NAME}`" in documented["OTEL_SERVICE_NAME"]


# --- links and the telemetry reference -------------------------------------------


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    results = REPO / "benchmarks" / "results"
    for target in links(path):
        resolved = (path.parent / target).resolve()
        if resolved.is_relative_to(results) and not results.exists():
            continue  # the benchmark results are not produced yet; checked once they are
        assert resolved.exists(), f"{path.name} links to {target}, which does not exist"


def test_telemetry_reference_is_the_contract() -> None:
    shipped = (REPO / "docs" / "telemetry.md").read_text(encoding="utf-8")
    if not SHARED_CONTRACT.exists():
        pytest.skip("the shared contract is not next to this checkout")
    assert shipped == SHARED_CONTRACT.read_text(encoding="utf-8"), (
        "docs/telemetry.md differs from the telemetry contract; copy it over"
    )


def test_readme_keeps_the_two_commands_at_the_top() -> None:
    first = next(b for b in BLOCKS if b.path.name == "README.md")
    assert [c[:2] for c in shell_commands(first.text)] == [
        ["bash", "scripts/demo.sh"],
        ["bash", "scripts/test.sh"],
    ]
    assert first.line < 20
