"""The dependency rules of the layout (docs/design.md), enforced."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.server import ROOT

SERVICE = ROOT / "service"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_agents_package_knows_nothing_of_chatkit() -> None:
    for path in (SERVICE / "agents").rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith("service.chatkit"), f"{path} imports {name}"
            assert name != "chatkit" and not name.startswith("chatkit."), f"{path} imports {name}"


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines reading `os.environ` / `os.getenv`; assigning `os.environ[...] = ...` is allowed
    (prometheus_client reads its multiprocess directory from there)."""
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
