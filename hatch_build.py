"""Build hook: compile ``discord_otel._otlp_speedups`` (the OTLP span encoder's C half).

The compiled module is optional. Where it is not built (no C compiler, no
Python headers, a platform whose compiler sysconfig does not name), the
package works the same, the Python encoder doing all the work; the build says
so in one line and goes on. ``DISCORD_OTEL_BUILD_SPEEDUPS=false`` skips it.

A wheel carries the module (and is then tagged for this Python and platform);
an editable install builds it next to its source, in ``src/discord_otel/``.
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

SOURCE = "src/discord_otel/_otlp_speedups.c"
MODULE = "discord_otel/_otlp_speedups"
SKIP_VARIABLE = "DISCORD_OTEL_BUILD_SPEEDUPS"


class SpeedupsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get(SKIP_VARIABLE, "").strip().lower() in {"0", "false", "no", "off"}:
            self.app.display_info(f"{SKIP_VARIABLE}=false: not compiling {SOURCE}")
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        root = Path(self.root)
        if version == "editable":
            output = root / "src" / (MODULE + suffix)
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="discord-otel-build-")
            output = Path(self._scratch.name) / (MODULE + suffix)
        error = _compile(root / SOURCE, output)
        if error is not None:
            self.app.display_warning(
                f"discord-otel: {SOURCE} not compiled ({error}); "
                "the pure-Python OTLP encoder will do its work"
            )
            return
        if version != "editable":
            build_data["force_include"][str(output)] = MODULE + suffix
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
