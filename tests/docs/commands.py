"""What the doc tests do with each command a shell block shows.

Every command is either run for real or checked statically; a command with no
rule here fails the test, so a new kind of command in the docs needs a rule.

* ``discord-otel simulate ...``: run as written (an OTLP test receiver stands
  in for the Collector).
* ``discord-otel demo ...``: run with ``--duration`` cut to a few seconds.
* ``discord-otel doctor``: run against the receiver; must find it reachable.
* ``[VAR=value ...] opentelemetry-instrument python bot.py`` or ``python bot.py``
  (a bot started on its own): run under ``discord-otel simulate`` with the tour
  scenario; the placeholders ``bot.py`` / ``my_bot.py`` stand for
  ``examples/bot.py`` and ``my.yaml`` for ``examples/scenarios/tour.yaml``.
  The receiver must get the bot's spans, with ``OTEL_SERVICE_NAME`` when set.
* ``bash scripts/demo.sh``: run for real (against a venv pointer so it does
  not reinstall), interrupted with SIGINT; must exit 0 with a summary.
* ``bash scripts/test.sh``: checked statically (``bash -n``): running it here
  would run this test suite inside itself.
* ``docker compose ...``: no Docker engine here: the compose file must exist, and
  the subcommand, flags and service names must be valid for it.
* ``pip install ...``: the package name and extras must be this project's.
* ``export VAR=value``: sets VAR for the block's later commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib
import yaml

from tests.docs.markdown import REPO
from tests.fixtures.otlp_receiver import OtlpReceiver

BIN = Path(sys.executable).parent
PLACEHOLDERS = {
    "bot.py": "examples/bot.py",
    "my_bot.py": "examples/bot.py",
    "my.yaml": "examples/scenarios/tour.yaml",
}
TOUR = "examples/scenarios/tour.yaml"
DEMO_SECONDS = "6"
COLLECTOR_ENDPOINTS = ("http://localhost:4318", "http://127.0.0.1:4318")

COMPOSE_GLOBAL_FLAGS = {"-f": True, "--file": True, "-p": True, "--project-name": True}
# subcommand -> its flags (True: takes a value)
COMPOSE_COMMANDS: dict[str, dict[str, bool]] = {
    "up": {"-d": False, "--detach": False, "--wait": False, "--build": False},
    "down": {"-v": False, "--volumes": False, "--remove-orphans": False},
    "ps": {"-a": False, "--all": False, "-q": False},
    "logs": {"-f": False, "--follow": False, "--tail": True},
    "pull": {},
    "restart": {},
    "stop": {},
}


@dataclass
class Context:
    receiver: OtlpReceiver
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)  # from export and VAR=value
    checked: list[str] = field(default_factory=list)  # what was done, for messages

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
        merged = {**base, **self.env, **(extra or {})}
        receiver = self.receiver.env(export_interval_ms=1000)
        for key, value in receiver.items():
            if key == "OTEL_EXPORTER_OTLP_ENDPOINT":
                current = merged.get(key)
                if current is not None and current.rstrip("/") not in COLLECTOR_ENDPOINTS:
                    raise AssertionError(f"the docs point a run at {current}; no rule for that")
            merged[key] = value
        return merged


def run(argv: list[str], ctx: Context) -> None:
    """Run or check one command (see the module's docstring)."""
    extra: dict[str, str] = {}
    while argv and "=" in argv[0] and argv[0].split("=", 1)[0].isidentifier():
        key, _, value = argv[0].partition("=")
        extra[key] = value
        argv = argv[1:]
    program = argv[0]
    if program == "export":
        for assignment in argv[1:]:
            key, _, value = assignment.partition("=")
            ctx.env[key] = value
        return
    if argv[:2] == ["bash", "scripts/demo.sh"]:
        return _demo_script(argv[2:], ctx)
    if argv[:2] == ["bash", "scripts/test.sh"]:
        subprocess.run(["bash", "-n", str(REPO / "scripts/test.sh")], check=True)
        return
    if program == "discord-otel":
        return _discord_otel(argv, ctx, extra)
    if program in ("opentelemetry-instrument", "python"):
        command = ["discord-otel", "simulate", "--scenario", TOUR, "--", *argv]
        return _discord_otel(command, ctx, extra)
    if argv[:2] == ["docker", "compose"]:
        return check_compose(argv[2:])
    if argv[:2] == ["pip", "install"]:
        return check_pip(argv[2:])
    raise AssertionError(f"no doc-test rule for the command {' '.join(argv)!r}")


def _execute(
    argv: list[str], ctx: Context, extra: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    argv = [PLACEHOLDERS.get(arg, arg) for arg in argv]
    ctx.checked.append(" ".join(argv))
    done = subprocess.run(
        argv,
        cwd=REPO,
        env=ctx.environment(extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done


def _discord_otel(argv: list[str], ctx: Context, extra: dict[str, str]) -> None:
    sub = argv[1]
    if sub == "demo":
        argv = list(argv)
        if "--duration" in argv:
            argv[argv.index("--duration") + 1] = DEMO_SECONDS
        else:
            argv += ["--duration", DEMO_SECONDS]
    elif sub not in ("simulate", "doctor"):
        raise AssertionError(f"no doc-test rule for discord-otel {sub}")
    before = len(ctx.receiver.spans())
    done = _execute(argv, ctx, extra)
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}"
    )
    if sub == "demo":
        assert "Summary" in done.stdout
    child = argv[argv.index("--") + 1 :] if "--" in argv else []
    if "opentelemetry-instrument" in child:
        spans = ctx.receiver.wait_for(
            lambda r: r.spans()[before:] if len(r.spans()) > before else None,
            what="the bot's spans",
        )
        service = ctx.environment(extra).get("OTEL_SERVICE_NAME")
        if service:
            assert {s.resource.get("service.name") for s in spans} == {service}


def _demo_script(args: list[str], ctx: Context) -> None:
    """scripts/demo.sh as written, interrupted like a user would (Ctrl-C)."""
    venv = ctx.tmp / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("python", "discord-otel"):
        link = venv / "bin" / name
        if not link.exists():
            link.symlink_to(BIN / name)
    stamp = venv / ".discord-otel-installed"
    stamp.write_text("")  # demo.sh installs without extras: already done, via the links
    ctx.checked.append("bash scripts/demo.sh (SIGINT after 8 s)")
    process = subprocess.Popen(
        ["bash", "scripts/demo.sh", *args],
        cwd=REPO,
        env=ctx.environment({"DISCORD_OTEL_VENV": str(venv)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(8)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out[-3000:]
    assert "Summary" in out, out[-3000:]
    assert "interrupted" in out, out[-3000:]


def check_compose(args: list[str]) -> None:
    files: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):
        flag = args[index]
        assert flag in COMPOSE_GLOBAL_FLAGS, f"docker compose has no global flag {flag}"
        if flag in ("-f", "--file"):
            files.append(args[index + 1])
        index += 2 if COMPOSE_GLOBAL_FLAGS[flag] else 1
    assert files, "docker compose without -f: the docs must name docker-compose.otel.yml"
    services: set[str] = set()
    for name in files:
        path = REPO / name
        assert path.is_file(), f"{name} does not exist"
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        services |= set(document.get("services", {}))
    command, rest = args[index], args[index + 1 :]
    assert command in COMPOSE_COMMANDS, f"no rule for docker compose {command}"
    flags = COMPOSE_COMMANDS[command]
    position = 0
    while position < len(rest):
        arg = rest[position]
        if arg.startswith("-"):
            assert arg in flags, f"docker compose {command} has no flag {arg} (known: {flags})"
            position += 2 if flags[arg] else 1
        else:
            assert arg in services, f"{arg} is not a service of {files}"
            position += 1


def check_pip(args: list[str]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project.get("optional-dependencies", {}))
    for spec in [a for a in args if not a.startswith("-")]:
        if spec == ".":
            continue
        name, _, rest = spec.partition("[")
        assert name == project["name"], f"pip install {spec}: the package is {project['name']}"
        for extra in filter(None, rest.rstrip("]").split(",")):
            assert extra.strip() in extras, f"{spec}: no extra {extra!r} (extras: {extras})"
