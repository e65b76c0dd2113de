"""The Grafana dashboard, read without a server: its queries parse, use the documented series,
filter by the template variables, and cover what operators need to see."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy import dashboard as board
from tests.deploy.conftest import ROOT, tool

PLACEHOLDERS = {"namespace": "chatkit", "job": "chatkit-backend", "provider": ".*", "model": ".*"}


@pytest.fixture(scope="module")
def dash() -> dict:
    return board.load()


def test_every_query_parses_as_promql(dash: dict, tmp_path: Path) -> None:
    # promtool parses every expression of a rule file: one recording rule per query.
    exprs = [board.substitute(q.expr, PLACEHOLDERS) for q in board.queries(dash)]
    exprs += [
        board.label_values_as_promql(board.variable_query(v))[0]
        for v in board.variables(dash).values()
        if v["type"] == "query"
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", "queries.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promql_check_rejects_a_broken_query(tmp_path: Path) -> None:
    rules = {
        "groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (le (rate(x[5m]))"}]}]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", "queries.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, gen_ai_request_model) (rate(x_bucket{a="b{c}"}[5m])))'
        " / ignoring(error_type) group_left sum(rate(y_total[1m] offset 5m)) > 14.4 * (1 - 0.99)"
        " and on() vector(1) or absent(up == 1)"
    )
    assert board.metric_names(expr) == {"x_bucket", "y_total", "up"}


def documented_series() -> set[str]:
    """Series named in docs/metrics.md's tables (the contract dashboards are built on)."""
    doc = ROOT / "docs" / "metrics.md"
    if not doc.exists():
        pytest.fail("docs/metrics.md is missing: it documents the series the dashboard uses")
    return set(re.findall(r"^\| `([a-z_:]+)` \|", doc.read_text(), re.MULTILINE))


def test_dashboard_uses_only_documented_series(dash: dict) -> None:
    documented = documented_series()
    assert "chatkit_requests_total" in documented
    used = {name for q in board.queries(dash) for name in board.metric_names(q.expr)}
    allowed = board.FROM_PROMETHEUS
    undocumented = {
        name
        for name in used
        if name not in documented and board.family(name) not in documented | allowed
    }
    assert undocumented == set()


def test_variables_are_datasource_namespace_job_provider_and_model(dash: dict) -> None:
    variables = board.variables(dash)
    assert list(variables) == ["datasource", "namespace", "job", "provider", "model"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job", "provider", "model"):
        variable = variables[name]
        assert variable["includeAll"], name
        assert variable["multi"], name
        assert variable["allValue"] == ".*", name
        promql, label = board.label_values_as_promql(board.variable_query(variable))
        assert "chatkit_build_info" in promql
        assert label == {"namespace": "namespace", "job": "job"}.get(name, name)


def test_every_panel_uses_the_datasource_variable_and_is_described(dash: dict) -> None:
    for panel in board.panels(dash):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_query_filters_by_namespace_and_job(dash: dict) -> None:
    for query in board.queries(dash):
        selectors = re.findall(r"\b([a-z_:]+)\{([^}]*)\}", query.expr)
        assert selectors, query
        for name, matchers in selectors:
            assert 'namespace=~"$namespace"' in matchers, (query.panel, name)
            assert 'job=~"$job"' in matchers, (query.panel, name)
            if name.startswith(("gen_ai_", "chatkit_model_errors")):
                assert 'gen_ai_provider_name=~"$provider"' in matchers, (query.panel, name)
                assert 'gen_ai_request_model=~"$model"' in matchers, (query.panel, name)


def test_panels_cover_what_operators_watch(dash: dict) -> None:
    by_title = {q.panel: q.expr for q in board.queries(dash)}
    required = {
        "ChatKit requests by type": "chatkit_requests_total",
        "Errors by cause": "error_type",
        "Model provider errors by cause": "chatkit_model_errors_total",
        "HTTP 5xx by route": 'status=~"5.."',
        "Time to first token": "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "Model call duration": "gen_ai_client_operation_duration_seconds_bucket",
        "Tokens per second by provider and model": "gen_ai_client_token_usage_sum",
        "Streams in flight": "chatkit_streams_in_flight",
        "Tool calls by outcome": "chatkit_tool_calls_total",
        "Store latency p99 by operation": "chatkit_store_operation_duration_seconds_bucket",
        "Uploads by outcome": "chatkit_uploads_total",
        "Upload bytes": "chatkit_upload_bytes",
        "Pods up and draining": "chatkit_draining",
    }
    for title, needle in required.items():
        assert needle in by_title.get(title, ""), title
    latency = [q for q in board.queries(dash) if q.panel == "Time to first token"]
    assert [q.legend for q in latency] == ["p50", "p95", "p99"]
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert "Uploads" in rows
