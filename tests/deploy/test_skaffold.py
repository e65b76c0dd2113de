"""skaffold.yaml: valid against its JSON schema (with each profile applied), and wired to what
it deploys: the image reaches the chart, the dev profile's sync lands in the dev image, the
ports it forwards exist, the PostgreSQL profile's URL points at the PostgreSQL it installs."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import (
    DEV_POSTGRES_CHART,
    FULLNAME,
    ROOT,
    Rendered,
    render_chart,
    shared_schema,
)

SKAFFOLD = ROOT / "skaffold.yaml"
SUPPORTED = ("skaffold/v4beta13", "skaffold/v4beta14")
# What skaffold fills in for the templates (the artifact chatkit-backend -> chatkit_backend).
TEMPLATE_VALUES = {
    "IMAGE_REPO_chatkit_backend": "registry.local/chatkit-backend",
    "IMAGE_TAG_chatkit_backend": "5f3e2a1",
    "IMAGE_DIGEST_chatkit_backend": "sha256:" + "ab" * 32,
    "LLM_PROVIDER": None,  # unset in the developer's shell
    "OPENAI_API_KEY": "sk-from-the-shell",
    "GEMINI_API_KEY": None,
}


def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SKAFFOLD.read_text())
    return data


def apply_patches(document: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON Patch subset skaffold profiles use: add, replace, remove."""
    out = copy.deepcopy(document)
    for patch in patches:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in patch["path"].split("/")[1:]
        ]
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if patch["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if patch["op"] == "add":
                node.insert(index, patch["value"])
            else:
                node[index] = patch["value"]
        else:
            assert patch["op"] == "add" or last in node, patch
            node[last] = patch["value"]
    return out


def with_profiles(*names: str) -> dict[str, Any]:
    base = config()
    profiles = {p["name"]: p for p in base["profiles"]}
    for name in names:
        base = apply_patches(base, profiles[name].get("patches", []))
    return base


def expand(template: str) -> str:
    """skaffold's templates as used here: {{.VAR}} and {{default "x" .VAR}}."""

    def one(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        default = re.fullmatch(r'default "([^"]*)" \.(\w+)', body)
        if default:
            value = TEMPLATE_VALUES[default.group(2)]
            return default.group(1) if value is None else value
        plain = re.fullmatch(r"\.(\w+)", body)
        assert plain, f"unexpected template {body!r}"
        value = TEMPLATE_VALUES[plain.group(1)]
        assert value is not None
        return value

    return re.sub(r"\{\{(.*?)\}\}", one, template)


def set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value


def release_values(release: dict[str, Any]) -> dict[str, Any]:
    """The values skaffold hands helm for a release: values files, then --set flags."""
    values: dict[str, Any] = {}
    for path in release.get("valuesFiles", []):
        values.update(yaml.safe_load((ROOT / path).read_text()))
    for key, template in release.get("setValueTemplates", {}).items():
        set_path(values, key, expand(template))
    for key, value in release.get("setValues", {}).items():
        set_path(values, key, value)
    return values


def render_release(release: dict[str, Any]) -> Rendered:
    chart = ROOT / release["chartPath"]
    return render_chart(release_values(release), chart=chart, release=release["name"])


@pytest.mark.parametrize("profiles", [(), ("dev",), ("postgres",), ("dev", "postgres")])
def test_skaffold_yaml_matches_its_schema(profiles: tuple[str, ...]) -> None:
    document = with_profiles(*profiles)
    assert document["apiVersion"] in SUPPORTED
    schema_file = shared_schema(f"skaffold/{document['apiVersion'].split('/')[1]}.json")
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]
    assert errors == []


def test_schema_check_rejects_a_misspelt_field() -> None:
    document = config()
    document["deploy"]["helm"]["releases"][0]["chartPth"] = "charts/chatkit-backend"
    schema = json.loads(shared_schema("skaffold/v4beta13.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(document))


def test_built_image_reaches_the_chart() -> None:
    document = config()
    (artifact,) = document["build"]["artifacts"]
    variable = re.sub(r"[/\-.:]", "_", artifact["image"])
    (release,) = document["deploy"]["helm"]["releases"]
    templates = release["setValueTemplates"]
    assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{variable}}}}}"
    assert (
        templates["image.tag"] == f"{{{{.IMAGE_TAG_{variable}}}}}@{{{{.IMAGE_DIGEST_{variable}}}}}"
    )
    rendered = render_release(release)
    assert rendered.server["image"] == (
        "registry.local/chatkit-backend:5f3e2a1@sha256:" + "ab" * 32
    )
    assert rendered.pod_spec["initContainers"][0]["image"] == rendered.server["image"]
    assert rendered.config["LLM_PROVIDER"] == "openai"
    assert rendered.secret == {"OPENAI_API_KEY": "sk-from-the-shell"}
    # The production image target is the Dockerfile's default (last) stage.
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert artifact["docker"]["target"] == stages[-1] == "runtime"


def test_port_forwards_reach_service_ports() -> None:
    for profiles in [(), ("dev",)]:
        document = with_profiles(*profiles)
        service = render_release(document["deploy"]["helm"]["releases"][0]).one("Service")
        ports = {p["port"]: p["name"] for p in service["spec"]["ports"]}
        forwards = document["portForward"]
        for forward in forwards:
            assert forward["resourceType"] == "service"
            assert forward["resourceName"] == service["metadata"]["name"] == FULLNAME
            assert forward["port"] in ports, (profiles, forward)
        assert next(f["localPort"] for f in forwards) == 8000
    assert sorted(ports.values()) == ["http"]  # dev: /metrics on the HTTP port


def test_dev_profile_syncs_into_the_dev_image_and_reloads() -> None:
    document = with_profiles("dev")
    (artifact,) = document["build"]["artifacts"]
    assert artifact["docker"]["target"] == "dev"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM app AS dev$", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY --chown=\S+ service/ /app/service/$", dockerfile, re.MULTILINE)
    for rule in artifact["sync"]["manual"]:
        assert rule["dest"] == "/app"  # service/x.py -> /app/service/x.py, as in the image
        assert list(ROOT.glob(rule["src"])), rule
    activation = next(p for p in document["profiles"] if p["name"] == "dev")["activation"]
    assert {"command": "dev"} in activation

    rendered = render_release(document["deploy"]["helm"]["releases"][0])
    server = rendered.server
    assert server["securityContext"]["readOnlyRootFilesystem"] is False  # sync writes
    assert server["securityContext"]["allowPrivilegeEscalation"] is False
    assert server["command"][:4] == ["python3", "-m", "hypercorn", "--reload"]
    assert rendered.config["ENVIRONMENT"] == "development"


def test_dev_profile_app_spec_loads_the_app(tmp_path: Any) -> None:
    """Hypercorn's reloader imports what the dev command names, from WORKDIR (here: the repo)."""
    values = yaml.safe_load(
        (ROOT / "charts" / "chatkit-backend" / "examples" / "skaffold-dev-values.yaml").read_text()
    )
    spec = values["command"][-1]
    code = (
        "import sys; from hypercorn.utils import load_application; "
        "app = load_application(sys.argv[1], 0); print(type(app.app).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, spec],
        cwd=ROOT,
        env={"DATABASE_URL": f"sqlite:///{tmp_path}/dev.db", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Quart"


def test_postgres_profile_points_the_service_at_its_postgres() -> None:
    document = with_profiles("dev", "postgres")
    releases = {r["name"]: r for r in document["deploy"]["helm"]["releases"]}
    app, postgres = releases[FULLNAME], releases["chatkit-postgres"]
    assert (ROOT / postgres["chartPath"]) == DEV_POSTGRES_CHART
    db = render_release(postgres)
    service = db.one("Service")
    secret = db.one("Secret")["stringData"]
    url = urlsplit(app["setValues"]["secrets.databaseUrl"])
    assert url.scheme == "postgresql"
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]
    assert (url.username, url.password, url.path.lstrip("/")) == (
        secret["POSTGRES_USER"],
        secret["POSTGRES_PASSWORD"],
        secret["POSTGRES_DB"],
    )
    rendered = render_release(app)
    assert rendered.secret["DATABASE_URL"] == app["setValues"]["secrets.databaseUrl"]
