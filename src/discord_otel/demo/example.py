"""Where the demo's bot comes from.

The demo runs the repository's ``examples/bot.py`` when it is there (a clone, or
an editable install of one). A package installed from PyPI has no
``examples/`` directory, so the wheel carries that same file as
``discord_otel/demo/example_bot.py`` (hatch ``force-include`` in pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BUNDLED = Path(__file__).resolve().with_name("example_bot.py")
# src/discord_otel/demo/example.py -> the repository root, in a checkout.
CHECKOUT = Path(__file__).resolve().parents[3] / "examples" / "bot.py"
MODULE_NAME = "discord_otel_demo_example_bot"


def example_path() -> Path:
    """``examples/bot.py`` of the checkout this package runs from, else the bundled copy."""
    return CHECKOUT if CHECKOUT.is_file() else BUNDLED


def load_example(path: Path | None = None) -> ModuleType:
    """Import the example bot's module (it defines ``ExampleBot``) without running it."""
    source = path or example_path()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, source)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module
