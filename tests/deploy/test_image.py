"""The Dockerfile, read without building it: hadolint-clean, and consistent with the chart and
the service (uid, port, probes, signals). scripts/build-image-offline builds and runs it."""

from __future__ import annotations

import json
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, load_values, render_chart, tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, optionally of one stage."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out: list[tuple[str, str]] = []
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = rest.split(" AS ")[-1] if " AS " in rest else rest
        if stage is None or current == stage:
            out.append((keyword.upper(), rest.strip()))
    return out


def last(stage: str, keyword: str) -> str:
    values = [rest for kw, rest in instructions(stage) if kw == keyword]
    assert values, f"no {keyword} in stage {stage}"
    return values[-1]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0, result.stderr


def test_hadolint_would_catch_a_regression(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    # A shell-form entrypoint: PID 1 would be a shell that does not forward SIGTERM.
    exec_form = 'ENTRYPOINT ["dumb-init", "--single-child", "--", "chatkit-backend"]'
    assert exec_form in DOCKERFILE.read_text()
    broken.write_text(DOCKERFILE.read_text().replace(exec_form, "ENTRYPOINT chatkit-backend"))
    result = subprocess.run(
        [tool("hadolint"), "--format", "json", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "DL3025" in {finding["code"] for finding in json.loads(result.stdout)}


def test_base_image_is_a_pinned_slim_python_overridable_by_build_arg() -> None:
    (arg,) = [rest for kw, rest in instructions() if kw == "ARG" and rest.startswith("BASE_IMAGE")]
    assert re.fullmatch(r"BASE_IMAGE=python:3\.1[1-3]-slim-bookworm@sha256:[0-9a-f]{64}", arg)
    froms = [rest for kw, rest in instructions() if kw == "FROM"]
    assert froms[0] == "${BASE_IMAGE} AS build"
    assert "${BASE_IMAGE} AS app" in froms


def test_default_target_is_the_runtime_image() -> None:
    stages = [rest.split(" AS ")[1] for kw, rest in instructions() if kw == "FROM"]
    assert stages == ["build", "app", "dev", "runtime"]


def test_runtime_runs_as_the_charts_non_root_uid() -> None:
    user = last("app", "USER")
    uid = int(re.search(r"APP_UID=(\d+)", DOCKERFILE.read_text()).group(1))  # type: ignore[union-attr]
    assert user == "${APP_UID}:${APP_UID}"
    assert uid >= 10000
    for name in ("defaults", "production"):
        rendered = render_chart(load_values(name))
        assert rendered.pod_spec["securityContext"]["runAsUser"] == uid
        assert rendered.pod_spec["securityContext"]["runAsGroup"] == uid


def test_runtime_listens_where_the_chart_probes() -> None:
    env = last("app", "ENV")
    assert "HOST=0.0.0.0" in env
    port = int(re.search(r"PORT=(\d+)", env).group(1))  # type: ignore[union-attr]
    assert last("app", "EXPOSE") == str(port)
    rendered = render_chart()
    assert rendered.config["PORT"] == str(port)
    healthcheck = last("app", "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "os.environ.get('PORT', '8000')" in healthcheck
    assert '"CMD", ' not in healthcheck
    assert 'CMD ["python3"' in healthcheck


def test_entrypoint_is_exec_form_and_forwards_signals_to_the_server_only() -> None:
    entrypoint = json.loads(last("app", "ENTRYPOINT"))
    assert entrypoint == ["dumb-init", "--single-child", "--", "chatkit-backend"]
    assert json.loads(last("app", "CMD")) == ["serve"]
    assert last("app", "STOPSIGNAL") == "SIGTERM"
    # dumb-init comes from PyPI, pinned, into the venv copied to the runtime stage.
    assert re.search(r"DUMB_INIT_VERSION=\d+\.\d+\.\d+", DOCKERFILE.read_text())


def test_final_image_gets_only_the_venv_from_the_build_stage() -> None:
    copies = [rest for kw, rest in instructions("app") if kw == "COPY"]
    assert copies == ["--from=build /opt/chatkit-backend /opt/chatkit-backend"]
    runs = " ".join(rest for kw, rest in instructions("app") if kw == "RUN")
    assert "apt-get" not in runs
    assert "pip" not in runs
    build_runs = " ".join(rest for kw, rest in instructions("build") if kw == "RUN")
    assert "-c requirements.lock" in build_runs
    assert "pip uninstall --yes setuptools wheel pip" in build_runs


@pytest.mark.parametrize(
    ("path", "in_context"),
    [
        ("pyproject.toml", True),
        ("requirements.lock", True),
        ("README.md", True),
        ("service/app.py", True),
        ("service/templates/playground.html", True),
        (".env", False),
        (".venv/bin/python", False),
        (".git/HEAD", False),
        ("data/chatkit.db", False),
        ("tests/conftest.py", False),
        ("charts/chatkit-backend/values.yaml", False),
        ("service/__pycache__/app.cpython-311.pyc", False),
    ],
)
def test_dockerignore_admits_only_the_build_inputs(path: str, in_context: bool) -> None:
    """Docker's rule: the last matching pattern wins; `!` re-admits."""
    admitted = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        pattern = pattern.removeprefix("**/")
        parts = path.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if raw.strip().lstrip("!").startswith("**/"):
            candidates += ["/".join(parts[i:]) for i in range(len(parts))]
        if any(fnmatch(c, pattern) for c in candidates):
            admitted = negate
    assert admitted == in_context


def test_offline_build_script_is_valid_bash() -> None:
    script = ROOT / "scripts" / "build-image-offline"
    assert script.stat().st_mode & 0o111
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    assert "--build-arg BASE_IMAGE=" in text
    assert "--read-only" in text
    assert "/readyz" in text
