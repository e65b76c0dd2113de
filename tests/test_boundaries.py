"""The layout's dependency rules (docs/design.md), enforced in one place.

Layers, lowest first: leaves (settings, observability, the request context, lifecycle) import
only leaves; `agents` and `auth` import leaves; `chatkit` imports those; the application
(app, cli, serving, ...) may import anything. `agents` never sees ChatKit (ours or the SDK's).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.server import ROOT

SERVICE = ROOT / "service"

LEAVES = (
    "service.settings",
    "service.settings_doc",
    "service.observability",
    "service.request_context",
    "service.lifecycle",
)
LAYERS: tuple[tuple[str, ...], ...] = (
    LEAVES,
    ("service.agents", "service.auth"),
    ("service.chatkit",),
)
"""Every service module not named here is application level (may import any layer)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return len(LAYERS)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_each_layer_imports_only_its_own_and_lower_layers() -> None:
    checked = 0
    for path in sorted(SERVICE.rglob("*.py")):
        module = module_name(path)
        for name in imported_modules(path):
            if name.startswith("service."):
                assert layer_of(name) <= layer_of(module), f"{module} imports {name}"
        checked += 1
    assert checked > 40
    assert layer_of("service.chatkit.server") > layer_of("service.agents.factory")
    assert layer_of("service.app") > layer_of("service.chatkit")


def test_agents_package_knows_nothing_of_chatkit() -> None:
    for path in (SERVICE / "agents").rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith("service.chatkit"), f"{path} imports {name}"
            assert name != "chatkit" and not name.startswith("chatkit."), f"{path} imports {name}"


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines reading `os.environ` / `os.getenv`; assigning `os.environ[...] = ...` is allowed
    (prometheus_client and the Agents SDK read their switches from there)."""
    writes = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = f"{node.value.id}.{node.attr}"
            if name == "os.getenv" or (name == "os.environ" and id(node) not in writes):
                lines.append(node.lineno)
    return lines


def test_no_module_reads_the_environment_on_its_own() -> None:
    for path in SERVICE.rglob("*.py"):
        reads = environment_reads(ast.parse(path.read_text()))
        assert reads == [], f"{path} reads the environment at lines {reads}"
    assert environment_reads(ast.parse("import os\nx = os.environ.get('A')")) == [2]
    assert environment_reads(ast.parse("import os\nos.environ['A'] = 'b'")) == []


def test_our_packages_never_shadow_the_sdks() -> None:
    # Pitfall 7: `chatkit` and `agents` must resolve to the SDKs, ours live under `service`.
    import agents
    import chatkit

    assert "site-packages" in str(Path(chatkit.__path__[0]))
    assert "site-packages" in str(Path(agents.__file__))
    assert not (ROOT / "chatkit").exists() and not (ROOT / "agents").exists()


def test_the_server_entry_points_leave_prometheus_client_unimported() -> None:
    """prometheus_client picks memory or files once, at import: the CLI and the supervisor must
    not import it before `prepare_metrics_directory()` exports PROMETHEUS_MULTIPROC_DIR."""
    probe = "import sys, service.cli, service.serving; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
