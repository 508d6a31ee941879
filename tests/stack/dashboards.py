"""Reading the provisioned dashboards: their panels' queries, with Grafana's variables
substituted the way Grafana would for "All" selected."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.stack.conftest import REPO

DASHBOARD_DIR = REPO / "grafana" / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))

# "All" of each variable, and the interval macros at a scale that suits a short test run.
SUBSTITUTIONS = {
    "${service:regex}": ".+",
    "$service": ".+",
    "$instance": ".+",
    "$shard": ".*",
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$__auto": "1m",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def prometheus_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, raw PromQL) for every Prometheus target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            datasource = target.get("datasource") or panel.get("datasource") or {}
            if datasource.get("type") == "prometheus":
                yield panel["title"], target["expr"]


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unsubstituted variables {leftover} in {expr}"
    return expr
