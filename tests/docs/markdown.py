"""Fenced code blocks of the README and docs/*.md, and how the doc tests read them.

Convention: an HTML comment on the line before a block can tell the tests what to
do with it (it does not show on GitHub):

* ``<!-- doc-test: bot expect="command ping" -->`` before a ``python`` block: a
  complete bot; run it under ``discord-otel simulate`` with a one-step
  scenario (``!ping``) and check the span ``expect`` reached an OTLP receiver.
  ``wrapper="opentelemetry-instrument"`` runs it under that wrapper.
* ``<!-- doc-test: skip REASON -->``: not run; the reason is required.

Without a comment: ``bash``/``sh``/``console`` blocks are commands (see
``commands.py`` for what each program gets), ``python`` blocks are compiled,
``yaml`` and ``json`` blocks are parsed, ``text`` blocks are left alone.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    directive: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def kind(self) -> str:
        return self.directive.split(" ", 1)[0] if self.directive else ""


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, language = match.groups()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        directive = ""
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0:
            found_directive = DIRECTIVE.match(lines[previous].strip())
            if found_directive:
                directive = found_directive.group(1)
        options: dict[str, str] = {}
        for token in shlex.split(directive)[1:] if directive else []:
            key, sep, value = token.partition("=")
            if sep:
                options[key] = value
        found.append(
            Block(path, start + 1, language.lower(), "\n".join(body) + "\n", directive, options)
        )
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments and
    ``$ `` prompts dropped, each split like a shell would."""
    commands: list[list[str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        argv = shlex.split(line, comments=True)
        if argv:
            commands.append(argv)
    return commands


def links(path: Path) -> list[str]:
    """Relative link targets in a Markdown file (no URLs, no in-page anchors)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [
        target.split("#", 1)[0]
        for target in targets
        if not re.match(r"^[a-z]+:", target) and not target.startswith("#")
    ]


def table_rows(path: Path) -> list[list[str]]:
    """Every Markdown table row, as stripped cells."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows
