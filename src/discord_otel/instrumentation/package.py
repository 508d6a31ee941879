"""What this instrumentation instruments (read by ``BaseInstrumentor``)."""

from __future__ import annotations

_instruments = ("discord.py >= 2.0, < 3",)

_supports_metrics = True
