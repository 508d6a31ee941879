"""Put first on a child's PYTHONPATH by ``discord-otel simulate``: redirects
discord.py to the simulator at start-up, then runs the ``sitecustomize`` this
one shadows, if any, so that nothing else is lost."""

import importlib.util
import os
import sys

try:
    from discord_otel.simulator.redirect import apply_from_environment

    apply_from_environment()
except Exception:  # never stop the interpreter from starting
    pass


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        directory = os.path.abspath(entry or os.getcwd())
        candidate = os.path.join(directory, "sitecustomize.py")
        if directory != here and os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_shadowed_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


_chain()
