"""The chart's Grafana dashboard as the tests read it: its queries, their metric names, and the
substitutions Grafana would make before sending them to Prometheus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.deploy.conftest import CHART

DASHBOARD = CHART / "dashboards" / "chatkit-backend.json"

# Written by Prometheus itself for every scrape target, not by the service.
FROM_PROMETHEUS = frozenset({"up"})

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Query:
    panel: str
    ref: str
    expr: str
    legend: str


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: dict[str, Any]) -> list[Query]:
    return [
        Query(panel["title"], target["refId"], target["expr"], target.get("legendFormat", ""))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


def label_values_as_promql(query: str) -> tuple[str, str]:
    """`label_values(sel, label)` as the PromQL that returns those values, and the label."""
    match = LABEL_VALUES.match(query.strip())
    assert match, f"not a label_values() query: {query}"
    return f"count by ({match['label']}) ({match['selector']})", match["label"]


def substitute(expr: str, values: dict[str, str], rate_interval: str = "5m") -> str:
    """What Grafana sends: built-in intervals and template variables replaced."""
    out = expr
    for name, value in (
        ("$__rate_interval", rate_interval),
        ("$__interval", "15s"),
        ("$__range", rate_interval),
    ):
        out = out.replace(name, value)
    for name in sorted(values, key=len, reverse=True):
        out = out.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    assert "$" not in out, f"unsubstituted variable in {out}"
    return out


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (not functions, keywords or label names)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\S+", "", text)
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?", "", text)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        token = match.group()
        if text[match.end() :].lstrip().startswith("(") or token.lower() in _KEYWORDS:
            continue
        names.add(token)
    return names


def family(name: str) -> str:
    """The series family a sample name belongs to (histogram suffixes removed)."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
