"""Build hook: compile the C halves of discord-otel's hot paths.

- ``discord_otel._otlp_speedups``: the OTLP span encoder's (otlp_encoding.py);
- ``discord_otel._gateway_speedups``: the traced gateway parser's (gateway.py).

Both are optional. Where one is not built (no C compiler, no Python headers, a
platform whose compiler sysconfig does not name), the package works the same,
its Python code doing all the work; the build says so in one line and goes on.
``DISCORD_OTEL_BUILD_SPEEDUPS=false`` skips them.

A wheel carries the modules (and is then tagged for this Python and platform);
an editable install builds them next to their sources, in ``src/discord_otel/``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULES = ("discord_otel/_otlp_speedups", "discord_otel/_gateway_speedups")  # under src/, .c
SKIP_VARIABLE = "DISCORD_OTEL_BUILD_SPEEDUPS"


class SpeedupsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get(SKIP_VARIABLE, "").strip().lower() in {"0", "false", "no", "off"}:
            self.app.display_info(f"{SKIP_VARIABLE}=false: not compiling the C halves")
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        root = Path(self.root)
        for module in MODULES:
            source = Path("src") / (module + ".c")
            if version == "editable":
                output = root / "src" / (module + suffix)
            else:
                if self._scratch is None:
                    self._scratch = tempfile.TemporaryDirectory(prefix="discord-otel-build-")
                output = Path(self._scratch.name) / (module + suffix)
            error = _compile(root / source, output)
            if error is not None:
                self.app.display_warning(
                    f"discord-otel: {source} not compiled ({error}); "
                    "its Python code will do the work"
                )
                continue
            if version != "editable":
                build_data["force_include"][str(output)] = module + suffix
                build_data["pure_python"] = False
                build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def compiler_command() -> list[str]:
    """The command that compiles and links an extension module here (sysconfig's
    ``LDSHARED``, its compiler replaced by ``CC`` as setuptools does); [] where
    sysconfig names none."""
    linker = shlex.split(sysconfig.get_config_var("LDSHARED") or "")
    if linker and os.environ.get("CC"):
        linker[0:1] = shlex.split(os.environ["CC"])
    return linker


def _compile(source: Path, output: Path) -> str | None:
    """Compile ``source`` into the extension module ``output``; why not, or None."""
    linker = compiler_command()
    if not linker:
        return "sysconfig names no shared-library linker for this platform"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python.h in {include} (Debian/Ubuntu: apt-get install python3-dev)"
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *linker,
        *shlex.split(sysconfig.get_config_var("CCSHARED") or ""),
        "-O3",
        "-fno-strict-aliasing",
        f"-I{include}",
        str(source),
        "-o",
        str(output),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        return f"{linker[0]}: {exc.strerror or exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{linker[0]} exited with {done.returncode}: {last}"
    return None
