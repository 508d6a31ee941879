"""Alert rules and Alertmanager: promtool and amtool on the real files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import find_binary, missing_service
from tests.stack.conftest import REPO, load_yaml

RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
TEST_FILES = sorted((REPO / "prometheus" / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO / "alertmanager" / "alertmanager.yml"

# What the issue asks the rules to cover.
REQUIRED_ALERTS = {
    "DiscordBotDown",
    "DiscordShardDisconnected",
    "DiscordCommandErrorRatioHigh",
    "DiscordCommandLatencyHigh",
    "DiscordInteractionAckDeadlineMissed",
    "DiscordRestRateLimited",
    "DiscordRestGlobalRateLimited",
    "DiscordEventLoopLagHigh",
    "DiscordBotMemoryHigh",
    "DiscordTaskStale",
    "DiscordCommandErrorBudgetBurn",
}
TWINS = {  # warning and critical with the same name
    "DiscordCommandErrorRatioHigh",
    "DiscordCommandLatencyHigh",
    "DiscordEventLoopLagHigh",
    "DiscordBotMemoryHigh",
    "DiscordCommandErrorBudgetBurn",
}


def _binary(name: str, package: str) -> Path:
    binary = find_binary(name)
    if binary is None:
        missing_service(name, f"Debian/Ubuntu: apt-get install {package}")
        raise AssertionError("unreachable")
    return binary


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_promtool_check_rules() -> None:
    promtool = _binary("promtool", "prometheus")
    assert RULE_FILES
    result = subprocess.run(
        [str(promtool), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = _binary("promtool", "prometheus")
    assert TEST_FILES
    result = subprocess.run(
        [str(promtool), "test", "rules", *map(str, TEST_FILES)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists_with_both_severities_where_tiered() -> None:
    by_name: dict[str, set[str]] = {}
    for rule in _alerts():
        by_name.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert set(by_name) >= REQUIRED_ALERTS
    for name in TWINS:
        assert by_name[name] == {"warning", "critical"}, name


def test_every_alert_has_summary_description_and_runbook() -> None:
    for rule in _alerts():
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert len(annotations.get(key, "")) > 20 or key == "summary", (rule["alert"], key)
            assert annotations.get(key), (rule["alert"], key)
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_every_alert_is_exercised_by_a_unit_test() -> None:
    tested = set()
    for path in TEST_FILES:
        for case in load_yaml(path)["tests"]:
            for alert_test in case.get("alert_rule_test", []):
                if alert_test.get("exp_alerts"):
                    tested.add(alert_test["alertname"])
    assert {rule["alert"] for rule in _alerts()} <= tested


def test_rule_files_are_the_ones_prometheus_loads() -> None:
    config = load_yaml(REPO / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def _amtool_version(amtool: Path) -> tuple[int, int]:
    result = subprocess.run([str(amtool), "--version"], capture_output=True, text=True)
    match = re.search(r"version (\d+)\.(\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return int(match.group(1)), int(match.group(2))


def test_amtool_check_config(tmp_path: Path) -> None:
    amtool = _binary("amtool", "prometheus-alertmanager")
    text = ALERTMANAGER_CONFIG.read_text()
    secret_path = "/run/secrets/discord_webhook_url"
    assert f"webhook_url_file: {secret_path}" in text
    secret = tmp_path / "discord_webhook_url"
    secret.write_text("https://discord.com/api/webhooks/1/not-a-real-token\n")
    if _amtool_version(amtool) >= (0, 28):
        text = text.replace(secret_path, str(secret))
    else:
        # discord_configs.webhook_url_file arrived in Alertmanager 0.28 (the pinned image);
        # older amtools (Debian 12 ships 0.25) only know webhook_url: check everything else.
        text = text.replace(
            f"webhook_url_file: {secret_path}", f"webhook_url: {secret.read_text()}"
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    result = subprocess.run(
        [str(amtool), "check-config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 receivers" in result.stdout
    assert "2 inhibit rules" in result.stdout


def test_critical_inhibits_its_warning_twin() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    rule = next(
        r for r in config["inhibit_rules"] if r["source_matchers"] == ['severity="critical"']
    )
    assert rule["target_matchers"] == ['severity="warning"']
    assert "alertname" in rule["equal"]
    assert "job" in rule["equal"]


def test_alertmanager_groups_and_repeats() -> None:
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    assert "alertname" in route["group_by"]
    assert route["repeat_interval"]
    assert route["receiver"] == "discord"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_rules_use_only_contract_metric_names(rule_file: Path) -> None:
    # Guard against typos: every metric a rule reads is in the telemetry contract, a
    # system-metrics name, or a recording rule defined here.
    contract = (REPO / "docs" / "telemetry.md").read_text()
    text = rule_file.read_text()
    recorded = set(re.findall(r"record: (\S+)", text))
    exprs = " ".join(
        rule["expr"] for group in load_yaml(rule_file)["groups"] for rule in group["rules"]
    )
    grouping = {
        label
        for labels in re.findall(r"\b(?:by|on|without|ignoring) \(([^)]*)\)", exprs)
        for label in re.split(r"[ ,]+", labels)
    }
    names = set(re.findall(r"\b([a-z_][a-z0-9_:]*)(?=\{|\[| *\)| *>| *==)", exprs)) - grouping
    suffixes = ("_bucket", "_count", "_sum")
    for name in names - recorded:
        if name in {"up", "target_info", "time", "le", "job", "instance", "by", "on", "and"}:
            continue
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        if base.startswith(("process_", "cpython_")):
            continue
        assert f"`{base}`" in contract, f"{rule_file.name}: {name} is not in docs/telemetry.md"
