"""The provisioned Grafana dashboards: valid, wired to the provisioned datasources, with
the variables a fleet needs, and every PromQL expression accepted by a real Prometheus."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.fixtures.prometheus import PrometheusServer
from tests.stack.conftest import REPO, load_yaml
from tests.stack.dashboards import DASHBOARDS, load, panels, prometheus_queries, substitute

EXPECTED_TITLES = {
    "Discord bot / Overview",
    "Discord bot / Commands and interactions",
    "Discord bot / Gateway and shards",
    "Discord bot / Discord REST",
    "Discord bot / Database",
    "Discord bot / Runtime and tasks",
    "Discord bot / Logs",
}


def _provisioned_datasources() -> dict[str, str]:
    uids = {}
    for path in (REPO / "grafana" / "provisioning" / "datasources").glob("*.yaml"):
        for datasource in load_yaml(path)["datasources"]:
            uids[datasource["uid"]] = datasource["type"]
    return uids


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            found.append(ds)
        for value in node.values():
            found.extend(_datasource_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_datasource_refs(value))
    return found


def test_the_seven_dashboards_exist_with_unique_uids() -> None:
    dashboards = [load(path) for path in DASHBOARDS]
    assert {d["title"] for d in dashboards} == EXPECTED_TITLES
    assert len({d["uid"] for d in dashboards}) == len(dashboards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_datasource_reference_is_provisioned(path: Any) -> None:
    provisioned = _provisioned_datasources()
    refs = _datasource_refs(load(path))
    assert refs
    for ref in refs:
        if ref["uid"] in {"-- Grafana --", "grafana"}:
            continue
        assert ref["uid"] in provisioned, f"{path.name}: unknown datasource uid {ref['uid']!r}"
        assert provisioned[ref["uid"]] == ref["type"], ref


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_has_service_instance_and_shard_variables(path: Any) -> None:
    variables = {v["name"]: v for v in load(path)["templating"]["list"]}
    for name in ("service", "instance", "shard"):
        assert name in variables, f"{path.name} lacks ${name}"
        assert variables[name]["includeAll"], (path.name, name)
        assert variables[name]["multi"], (path.name, name)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_prometheus_query_follows_the_service_and_instance_variables(path: Any) -> None:
    for title, expr in prometheus_queries(load(path)):
        for selector in re.findall(r"\b[a-z_:]+\{([^}]*)\}", expr):
            assert 'job=~"$service"' in selector, (title, expr)
            assert 'instance=~"$instance"' in selector, (title, expr)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_gateway_panels_follow_the_shard_variable(path: Any) -> None:
    for title, expr in prometheus_queries(load(path)):
        for metric, selector in re.findall(r"\b([a-z_:]+)\{([^}]*)\}", expr):
            if metric.startswith(("discord_gateway_", "discord_shard_")):
                assert 'discord_shard_id=~"$shard"' in selector, (title, expr)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_have_titles_descriptions_and_no_overlap(path: Any) -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in panels(load(path)):
        assert panel["title"]
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]
            assert panel["targets"], panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


def test_histogram_latency_panels_show_exemplars() -> None:
    histogram_targets = [
        target
        for path in DASHBOARDS
        for panel in panels(load(path))
        if panel["type"] == "timeseries"
        for target in panel.get("targets", [])
        if "histogram_quantile" in target.get("expr", "")
    ]
    assert histogram_targets
    assert all(t.get("exemplar") for t in histogram_targets)


def test_logs_dashboard_queries_loki_by_service_and_level() -> None:
    (logs,) = [load(p) for p in DASHBOARDS if load(p)["title"] == "Discord bot / Logs"]
    kinds = {p["type"] for p in panels(logs)}
    assert "logs" in kinds
    exprs = [t["expr"] for p in panels(logs) for t in p["targets"]]
    assert all('service_name=~"$service"' in e and "$level" in e for e in exprs)


def test_dashboard_provider_loads_the_dashboard_directory(compose: dict[str, Any]) -> None:
    (provider,) = load_yaml(REPO / "grafana/provisioning/dashboards/discord-otel.yaml")["providers"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert (REPO / "grafana/dashboards" / home.rsplit("/", 1)[1]).is_file()


def test_datasources_are_cross_linked() -> None:
    (path,) = (REPO / "grafana" / "provisioning" / "datasources").glob("*.yaml")
    by_uid = {d["uid"]: d for d in load_yaml(path)["datasources"]}
    prom = by_uid["prometheus"]["jsonData"]
    assert prom["exemplarTraceIdDestinations"][0] == {
        "name": "trace_id",
        "datasourceUid": "tempo",
        "urlDisplayLabel": "View trace",
    }
    tempo = by_uid["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert "trace_id=" in tempo["tracesToLogsV2"]["query"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    (derived,) = by_uid["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo"
    assert derived["matcherRegex"] == "trace_id"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_promql_expression_parses(path: Any, prometheus_server: PrometheusServer) -> None:
    """Debian's Prometheus 2.42 has no parse endpoint: run each query; a syntax error comes
    back as HTTP 400 with errorType bad_data, anything valid as success (data or not)."""
    queries = list(prometheus_queries(load(path)))
    if load(path)["title"] == "Discord bot / Logs":
        assert not queries
        return
    assert queries
    for title, expr in queries:
        url = f"{prometheus_server.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": substitute(expr)}
        )
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        assert body["status"] == "success", f"{path.name} / {title}: {body.get('error')}\n{expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboards_use_only_contract_metric_names(path: Any) -> None:
    contract = (REPO / "docs" / "telemetry.md").read_text()
    for title, expr in prometheus_queries(load(path)):
        for metric in re.findall(r"\b([a-z_:]+)\{", expr):
            if metric in {"target_info"} or metric.startswith(("process_", "cpython_")):
                continue
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert f"`{base}`" in contract, f"{path.name} / {title}: {metric}"
