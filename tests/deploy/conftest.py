"""Shared pieces of the deployment tests: the chart, its value sets and rendered objects.

The chart is rendered offline with helm-python-sdk (no helm binary, no cluster). Schemas of
custom resources and skaffold are copies kept in tests/deploy/schemas/ (see its README).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "chatkit-backend"
DEV_POSTGRES_CHART = ROOT / "charts" / "dev-postgresql"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"  # the team's reference copies, when present
RELEASE = "chatkit-backend"
NAMESPACE = "chatkit"
FULLNAME = "chatkit-backend"  # the release name contains the chart name

# Value sets rendered by the chart tests: the defaults, the README's two examples, the skaffold
# dev values and the chart's own ci/ sets.
VALUE_FILES: dict[str, Path | None] = {
    "defaults": None,
    "minimal": CHART / "examples" / "minimal-values.yaml",
    "production": CHART / "examples" / "production-values.yaml",
    "skaffold-dev": CHART / "examples" / "skaffold-dev-values.yaml",
    **{path.name.removesuffix("-values.yaml"): path for path in sorted(CHART.glob("ci/*.yaml"))},
}


def load_values(name: str) -> dict[str, Any]:
    path = VALUE_FILES[name]
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text())
    return data or {}


def shared_schema(relative: str) -> Path:
    path = SCHEMAS / relative
    if not path.is_file():
        pytest.fail(f"missing {path}: add the schema to tests/deploy/schemas/")
    return path


# Tools the tests run. Python ones come from the project's venv (the deploy extra); promtool and
# prometheus from the project's own tool folder, filled by scripts/system-deps from Debian's
# package without installing it. Never from PATH: a machine's own copy would hide a broken
# set-up here that a fresh CI machine would hit.
VENV_BIN = ROOT / ".venv" / "bin"
TOOLS_BIN = ROOT / ".tools" / "bin"
FROM_TOOLS_BIN = frozenset({"promtool", "prometheus"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def tool(name: str) -> str:
    """The path of a tool the tests need. Missing: a skip that says how to get it; under CI=true,
    a failure."""
    if name in FROM_TOOLS_BIN:
        path = TOOLS_BIN / name
        how = (
            "run scripts/system-deps (it extracts Debian's prometheus package into .tools/, "
            "no root needed), or put the binary there yourself"
        )
    else:
        path = VENV_BIN / name
        how = "run scripts/bootstrap test,deploy"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    folder = path.parent.relative_to(ROOT) if path.parent.is_relative_to(ROOT) else path.parent
    message = f"{name} is not in {folder}/: {how} (scripts/test does it)"
    if in_ci():
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@dataclass
class Rendered:
    """The objects a render produced, with the template each came from."""

    templates: dict[str, str]
    docs: list[tuple[str, dict[str, Any]]]

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [doc for _, doc in self.docs]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.objects if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [
            doc for doc in self.of_kind(kind) if name is None or doc["metadata"]["name"] == name
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def has(self, kind: str) -> bool:
        return bool(self.of_kind(kind))

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment", FULLNAME)

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def server(self) -> dict[str, Any]:
        (container,) = [c for c in self.pod_spec["containers"] if c["name"] == "server"]
        return container

    @property
    def config(self) -> dict[str, str]:
        data: dict[str, str] = self.one("ConfigMap", FULLNAME)["data"]
        return data

    @property
    def secret(self) -> dict[str, str]:
        data = self.one("Secret", FULLNAME).get("data") or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    @property
    def pod_annotations(self) -> dict[str, str]:
        annotations: dict[str, str] = self.deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations

    @property
    def notes(self) -> str:
        return next(text for path, text in self.templates.items() if path.endswith("NOTES.txt"))


def render_chart(
    values: dict[str, Any] | None = None,
    *,
    chart: Path = CHART,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Rendered:
    with helm_python.Chart.load(chart) as loaded:
        templates = loaded.render(values or {}, name=release, namespace=namespace)
    docs = []
    for path, text in sorted(templates.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return Rendered(templates, docs)


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders: Deployment, CronJob and the helm test Pod."""
    for doc in rendered.objects:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Deployment":
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            yield name, doc["spec"]


@pytest.fixture(scope="session")
def rendered_sets() -> dict[str, Rendered]:
    return {name: render_chart(load_values(name)) for name in VALUE_FILES}
