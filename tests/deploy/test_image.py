"""The Dockerfile, read without building it: hadolint-clean, and consistent with the chart and
the service (uid, port, probes, signals). scripts/build-image-offline builds and runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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
    runs = [rest for kw, rest in instructions("app") if kw == "RUN"]
    assert not any("apt-get" in run for run in runs)
    assert not any("pip install" in run for run in runs)
    build_runs = " ".join(rest for kw, rest in instructions("build") if kw == "RUN")
    assert "-c requirements.lock" in build_runs
    assert "pip uninstall --yes setuptools wheel pip" in build_runs


def test_dependency_layer_reads_only_the_project_metadata_and_the_lock() -> None:
    """Its cache key: pyproject.toml and requirements.lock, not the README or the sources."""
    build = instructions("build")
    install = next(
        i for i, (kw, rest) in enumerate(build) if kw == "RUN" and "-c requirements.lock" in rest
    )
    copied = [rest for kw, rest in build[:install] if kw == "COPY"]
    assert copied == ["pyproject.toml requirements.lock ./"]


# --- no pip, setuptools or wheel in the final image -----------------------------------------
# The official python image installs them under /usr/local (on PATH); the build stage's venv is
# already rid of them, the base's own copies have to go in the final stage.

BASE_TOOLS = ("pip", "setuptools", "wheel")


def removal_run() -> str:
    """The final stage's RUN that uninstalls the base's pip, setuptools and wheel."""
    app = instructions("app")
    runs = [rest for kw, rest in app if kw == "RUN" and "pip uninstall" in rest]
    assert len(runs) == 1, "the final stage must uninstall the base's pip, setuptools and wheel"
    return runs[0]


def test_final_stage_uninstalls_the_bases_pip_setuptools_and_wheel() -> None:
    run = removal_run()
    uninstall = re.search(r"python3 -m pip uninstall --yes --no-input ([\w ]+);", run)
    assert uninstall, run
    assert sorted(uninstall.group(1).split()) == sorted(BASE_TOOLS)
    # With the base's python3, as root: before PATH leads to the venv and before USER.
    app = instructions("app")
    position = app.index(("RUN", run))
    env_path = next(i for i, (kw, rest) in enumerate(app) if kw == "ENV" and "PATH=/opt/" in rest)
    user = next(i for i, (kw, _) in enumerate(app) if kw == "USER")
    assert position < env_path
    assert position < user
    # And the runtime/dev targets are built on that stage.
    froms = [rest for kw, rest in instructions() if kw == "FROM"]
    assert "app AS runtime" in froms
    assert "app AS dev" in froms


def fake_distribution(venv: Path, name: str, script: str) -> None:
    """A minimal installed distribution (module, console script, RECORD) pip can uninstall."""
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("")
    info = site / f"{name}-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0\n")
    (info / "INSTALLER").write_text("pip\n")
    (venv / "bin" / script).write_text("#!/bin/sh\n")
    (venv / "bin" / script).chmod(0o755)
    record = [f"{name}/__init__.py,,", f"{info.name}/METADATA,,", f"{info.name}/INSTALLER,,"]
    record += [f"{info.name}/RECORD,,", f"../../../bin/{script},,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture(scope="module")
def base_like_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the base image's python3: a venv with pip (and setuptools on 3.11),
    plus whatever of setuptools/wheel it lacks as minimal installed distributions."""
    venv = tmp_path_factory.mktemp("base") / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    for name in ("setuptools", "wheel"):
        probe = subprocess.run(
            [str(venv / "bin" / "python3"), "-c", f"import {name}"],
            capture_output=True,
            check=False,
        )
        if probe.returncode != 0:
            fake_distribution(venv, name, "wheel" if name == "wheel" else "easy_install")
    return venv


def run_in(venv: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`command` the way the Dockerfile's SHELL runs it, with only `venv`/bin on PATH."""
    return subprocess.run(
        ["/bin/sh", "-eu", "-c", command],
        env={"PATH": str(venv / "bin"), "HOME": str(venv)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def leftovers(venv: Path) -> list[str]:
    python = str(venv / "bin" / "python3")
    left = [
        name
        for name in BASE_TOOLS
        if subprocess.run(
            [python, "-c", f"import {name}"], capture_output=True, check=False
        ).returncode
        == 0
    ]
    return left + sorted(p.name for p in (venv / "bin").iterdir() if re.match(r"pip|wheel", p.name))


def test_the_check_after_the_removal_catches_whatever_is_left(base_like_python: Path) -> None:
    """Without the uninstall the RUN fails: the build cannot silently keep pip."""
    assert set(BASE_TOOLS) <= set(leftovers(base_like_python))
    _, check = re.split(r"\bfi\s+&&\s+", removal_run(), maxsplit=1)
    assert check.startswith("python3 -c "), check
    result = run_in(base_like_python, check)
    assert result.returncode != 0
    assert "still in the image" in result.stderr
    for name in (*BASE_TOOLS, "bin/pip"):
        assert name in result.stderr


def test_the_removal_leaves_no_pip_setuptools_or_wheel(base_like_python: Path) -> None:
    """The RUN itself, on a python that has all three (as the official image's does)."""
    result = run_in(base_like_python, removal_run())
    assert result.returncode == 0, result.stdout + result.stderr
    assert leftovers(base_like_python) == []
    # Its python still works, and a second run (nothing left to remove) passes too.
    assert run_in(base_like_python, "python3 -c 'import json, venv'").returncode == 0
    again = run_in(base_like_python, removal_run())
    assert again.returncode == 0, again.stderr


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


OFFLINE_BUILD = ROOT / "scripts" / "build-image-offline"


def unstable_build_args(script: str) -> list[str]:
    """--build-arg values of `script` that may differ between two runs.

    A build argument is part of the cache key of every RUN after its ARG: a value that changes
    (a free port, a temporary path, a timestamp) rebuilds the dependency layer on every run. A
    value may use variables assigned only literals, or `${NAME:-literal}` defaults.
    """
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n\s*", " ", code)
    assignments: dict[str, list[str]] = {}
    for name, value in re.findall(r"^\s*(?:local\s+|export\s+)?(\w+)=(\S*)", text, re.M):
        assignments.setdefault(name, []).append(value)

    def stable(value: str, seen: frozenset[str] = frozenset()) -> bool:
        if re.search(r"\$\(|`|\$RANDOM|\$\$|\$SECONDS|\$BASHPID|mktemp|date", value):
            return False
        for braced, plain in re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", value):
            name = braced or plain
            if name in seen:
                continue
            values = assignments.get(name)
            if not values:
                return False  # from the environment only, or a loop/read variable
            for assigned in values:
                default = re.fullmatch(r"[\"']?\$\{" + name + r":-([^}]*)\}[\"']?", assigned)
                if not stable(default.group(1) if default else assigned, seen | {name}):
                    return False
        return True

    args = re.findall(r"--build-arg\s+(\w+)=(\"[^\"]*\"|'[^']*'|\S+)", text)
    assert args, "no --build-arg found"
    return [f"{name}={value}" for name, value in args if not stable(value)]


def test_offline_build_passes_the_same_build_args_every_run() -> None:
    assert unstable_build_args(OFFLINE_BUILD.read_text()) == []


def test_the_build_arg_check_catches_a_random_port() -> None:
    """The previous script: a free port per run went into PIP_FIND_LINKS."""
    before = """
port=$(free_port)
docker build --network host \\
  --build-arg BASE_IMAGE="$BASE" \\
  --build-arg PIP_FIND_LINKS="http://127.0.0.1:$port/" \\
  -t "$IMAGE" .
"""
    assert unstable_build_args("BASE=${BASE:-base:bookworm}\n" + before) == [
        'PIP_FIND_LINKS="http://127.0.0.1:$port/"'
    ]
    assert unstable_build_args('docker build --build-arg X="$(date +%s)" .') != []
    assert unstable_build_args('docker build --build-arg X="$FROM_ENV" .') != []
    assert unstable_build_args('P=${P:-8}\ndocker build --build-arg X="h:$P" .') == []


def test_offline_build_serves_the_wheels_where_the_build_arg_points() -> None:
    text = OFFLINE_BUILD.read_text()
    assert re.search(r"^WHEELS_PORT=\$\{WHEELS_PORT:-\d+\}$", text, re.M)
    assert '--build-arg PIP_FIND_LINKS="http://127.0.0.1:$WHEELS_PORT/"' in text
    assert re.search(r"http\.server --bind 127\.0\.0\.1 .*\"\$WHEELS_PORT\"", text)


def test_offline_build_checks_the_image_has_no_pip_setuptools_or_wheel() -> None:
    text = OFFLINE_BUILD.read_text()
    check = text[text.index("--entrypoint python3") : text.index('"$IMAGE" migrate')]
    for name in BASE_TOOLS:
        assert f'\\"{name}\\"' in check or f"'{name}'" in check, name
    assert "(pip|wheel|easy_install)" in check  # on PATH
    assert "os.path.realpath(sys.executable)" in check  # the base's python3, not only the venv's


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
