"""The chart lints, renders valid Kubernetes objects and refuses values it cannot honour."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    DEV_POSTGRES_CHART,
    ROOT,
    VALUE_FILES,
    Rendered,
    load_values,
    render_chart,
    shared_schema,
    tool,
)

# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas bundled
# with kubernetes-validate.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
CUSTOM_RESOURCE_GROUPS = (
    "monitoring.coreos.com",
    "gateway.networking.k8s.io",
    "cloud.google.com",
    "networking.gke.io",
)
# No schema for it in ../shared/schemas/crds/: test_chart_objects.py checks its fields.
WITHOUT_SHARED_SCHEMA = frozenset({"HealthCheckPolicy"})


@pytest.mark.parametrize("value_set", list(VALUE_FILES))
def test_chart_lints_without_warnings(value_set: str) -> None:
    report = helm_python.lint(CHART, load_values(value_set), strict=True, namespace="chatkit")
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert findings == [], findings
    assert report["errors"] == []


def test_dev_postgresql_chart_lints_without_warnings() -> None:
    report = helm_python.lint(DEV_POSTGRES_CHART, {}, strict=True, namespace="chatkit")
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    assert report["errors"] == []


def test_chart_supports_the_oldest_kubernetes_it_is_tested_on() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBERNETES_VERSIONS[0]}-0"


def write_manifests(directory: Path, label: str, rendered: Rendered) -> list[Path]:
    paths = []
    for index, doc in enumerate(rendered.objects):
        path = directory / f"{label}-{index:02d}-{doc['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_pass_kubernetes_validate_strict(
    rendered_sets: dict[str, Rendered], tmp_path: Path, version: str
) -> None:
    files: list[Path] = []
    for name, rendered in rendered_sets.items():
        files += write_manifests(tmp_path, name, rendered)
    files += write_manifests(tmp_path, "dev-postgresql", render_chart(chart=DEV_POSTGRES_CHART))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", version, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Custom resources have no schema there (they are checked against their CRDs below);
    # every built-in kind must have been validated, not skipped.
    skipped = [line for line in output.splitlines() if line.startswith("WARN")]
    for line in skipped:
        assert any(f"api version {group}/" in line for group in CUSTOM_RESOURCE_GROUPS), line
    passed = [line for line in output.splitlines() if line.startswith("INFO") and "passed" in line]
    assert len(passed) + len(skipped) == len(files)


def test_custom_resources_match_their_crd_schemas(rendered_sets: dict[str, Rendered]) -> None:
    checked: set[str] = set()
    for name, rendered in rendered_sets.items():
        for doc in rendered.objects:
            group, _, version = doc["apiVersion"].rpartition("/")
            if group not in CUSTOM_RESOURCE_GROUPS or doc["kind"] in WITHOUT_SHARED_SCHEMA:
                continue
            schema_path = shared_schema(f"crds/{group}/{doc['kind'].lower()}_{version}.json")
            validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
            assert errors == [], f"{name}: {doc['kind']} {errors}"
            checked.add(doc["kind"])
    # Each custom resource the chart can render was rendered by some value set.
    assert checked == {
        "ServiceMonitor",
        "PrometheusRule",
        "HTTPRoute",
        "BackendConfig",
        "GCPBackendPolicy",
    }


def test_crd_schemas_reject_a_broken_resource(rendered_sets: dict[str, Rendered]) -> None:
    """The CRD check above can fail: a ServiceMonitor endpoint with a misspelt field does."""
    monitor = rendered_sets["minimal"].one("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    schema = json.loads(
        shared_schema("crds/monitoring.coreos.com/servicemonitor_v1.json").read_text()
    )
    assert list(jsonschema.Draft7Validator(schema).iter_errors(monitor))


def test_every_value_set_renders_the_objects_it_switches_on(
    rendered_sets: dict[str, Rendered],
) -> None:
    production = rendered_sets["production"]
    for kind in (
        "Deployment",
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "CronJob",
        "ServiceMonitor",
        "PrometheusRule",
        "Pod",
    ):
        assert production.has(kind), kind
    assert not production.has("Secret")  # existingSecret
    defaults = rendered_sets["defaults"]
    assert sorted({doc["kind"] for doc in defaults.objects}) == [
        "ConfigMap",
        "Deployment",
        "Pod",
        "Secret",
        "Service",
        "ServiceAccount",
    ]


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"config": {"llmProvider": "anthropic"}}, "/config/llmProvider"),
        ({"config": {"logLevel": "verbose"}}, "/config/logLevel"),
        ({"config": {"workers": 0}}, "/config/workers"),
        ({"config": {"openaiBaseUrl": "ftp://models"}}, "/config/openaiBaseUrl"),
        ({"replicas": 2}, "replicas"),
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"shutdown": {"extraGraceSeconds": 5}}, "/shutdown/extraGraceSeconds"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"secrets": {"openaiApiKey": 123}}, "/secrets/openaiApiKey"),
        ({"secrets": {"databaseUrl": "mysql://db/chat"}}, "/secrets/databaseUrl"),
        ({"ingress": {"hosts": [{"paths": [{"path": "/", "pathType": "Prefix"}]}]}}, "host"),
        ({"metrics": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
        ({"extraConfig": {"log-level": "x"}}, "log-level"),
    ],
)
def test_values_outside_the_schema_are_rejected(values: dict[str, Any], path: str) -> None:
    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmValuesError) as failure,
    ):
        chart.validate_schema(values)
    assert path in str(failure.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"existingSecret": "mine", "secrets": {"openaiApiKey": "sk-x"}},
            "existingSecret is set",
        ),
        ({"replicaCount": 2}, "SQLite keeps conversations inside one pod"),
        ({"autoscaling": {"enabled": True}}, "SQLite keeps conversations inside one pod"),
        ({"config": {"llmProvider": "openai-compatible"}}, "needs config.openaiBaseUrl"),
        ({"prune": {"enabled": True}}, "prune.enabled needs an external database"),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor needs metrics.enabled",
        ),
    ],
)
def test_inconsistent_values_fail_the_render_clearly(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render_chart(values)
    assert message in str(failure.value)


YAMLLINT_CONFIG = """
extends: default
rules:
  line-length: {max: 120}
  document-start: disable
  truthy: {allowed-values: ["true", "false"], check-keys: false}
  comments: {min-spaces-from-content: 1}
  indentation: {spaces: 2, indent-sequences: whatever}
"""


def test_hand_written_yaml_is_yamllint_clean() -> None:
    files = [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        *sorted(CHART.glob("examples/*.yaml")),
        *sorted(CHART.glob("ci/*.yaml")),
        DEV_POSTGRES_CHART / "Chart.yaml",
        DEV_POSTGRES_CHART / "values.yaml",
        ROOT / "skaffold.yaml",
        ROOT / "tests" / "deploy" / "alerts_test.yaml",
    ]
    result = subprocess.run(
        [tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_manifests_have_no_duplicate_keys(
    rendered_sets: dict[str, Rendered], tmp_path: Path
) -> None:
    # PyYAML keeps the last of two equal keys silently; yamllint's key-duplicates does not.
    files = []
    for name, rendered in rendered_sets.items():
        for template, text in rendered.templates.items():
            if template.endswith(".yaml") and text.strip():
                path = tmp_path / f"{name}-{Path(template).name}"
                path.write_text(text)
                files.append(path)
    config = "{rules: {key-duplicates: enable, trailing-spaces: enable}}"
    result = subprocess.run(
        [tool("yamllint"), "-d", config, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_value_is_documented() -> None:
    """Each leaf of values.yaml has a `## @param` line, and each @param names a real value."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {
        line.split()[2]
        for line in (CHART / "values.yaml").read_text().splitlines()
        if line.strip().startswith("## @param ")
    }

    def leaves(node: Any, path: str = "") -> set[str]:
        if isinstance(node, dict) and node and path not in documented:
            return set().union(*(leaves(v, f"{path}.{k}".lstrip(".")) for k, v in node.items()))
        return {path}

    undocumented = {leaf for leaf in leaves(values) if leaf not in documented}
    assert undocumented == set()

    def exists(path: str) -> bool:
        node: Any = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    assert [p for p in documented if not exists(p)] == []
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) <= set(schema["properties"])
