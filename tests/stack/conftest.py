"""Shared helpers for the bundled stack's tests (docker-compose.otel.yml and its configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.otel.yml"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


@pytest.fixture(scope="session")
def collector_config() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(REPO / "collector" / "config.yaml")
    return data
