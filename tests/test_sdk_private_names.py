"""No module under `service/` leans on private names of the SDKs (`chatkit`, `agents`, `openai`).

Private names change without notice between releases; each use is a silent break on the next
upgrade. The scan reads the syntax tree of every module and reports:

- imports of `_x` names, or from `_x` modules, of the SDKs;
- attribute access of an `_x` name our own code does not define but an SDK does
  (`self._process_streaming`, `self._inner._cleanup_on_run_end`, `agents._debug`, ...);
- methods of subclasses of SDK classes that override one of the SDK class's `_x` members;
- strings naming an SDK private (`getattr(ctx, "_flag")`, `__qualname__ == "_Class.method"`),
  and comparisons against `__qualname__`;
- copies of the SDKs' private id prefixes (`"thr_"`, ...).

Findings must be listed in `ALLOWED` with the reason; an entry that no longer matches anything
fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.support.server import ROOT

SERVICE = ROOT / "service"
SDKS = ("chatkit", "agents", "openai")

ALLOWED: dict[tuple[str, str], str] = {
    # (module path under the repository, private name): why it is tolerated.
}

PUBLIC_UNDERSCORE_NAMES = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})
"""Documented APIs despite the underscore (named tuples)."""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} `{self.name}`"


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in {"_"}


def is_sdk_module(module: str) -> bool:
    return module.split(".")[0] in SDKS


@cache
def sdk_sources() -> str:
    files: list[str] = []
    for sdk in SDKS:
        package = Path(importlib.import_module(sdk).__file__ or "").parent
        files.extend(path.read_text(errors="replace") for path in sorted(package.rglob("*.py")))
    return "\n".join(files)


@cache
def sdk_defines(name: str) -> bool:
    """Whether some SDK module defines `name` (a function, class, attribute or constant, or an
    attribute it sets by its name in a string)."""
    escaped = re.escape(name)
    defined = rf"(?m)(?:\bdef |\bclass |^\s*|\bself\.){escaped}\b\s*(?:[(:=]|$)"
    quoted = rf"[\"']{escaped}[\"']"
    return re.search(f"{defined}|{quoted}", sdk_sources()) is not None


@cache
def sdk_id_prefixes() -> frozenset[str]:
    """The values of the SDKs' private `..._PREFIX...` constants, as ids start with them."""
    prefixes: set[str] = set()
    for sdk in SDKS:
        package = Path(importlib.import_module(sdk).__file__ or "").parent
        for path in package.rglob("*.py"):
            text = path.read_text(errors="replace")
            if "PREFIX" not in text:
                continue
            for node in ast.parse(text).body:
                target, value = assignment(node)
                if not (target and is_private(target) and "PREFIX" in target.upper()):
                    continue
                values = value.values if isinstance(value, ast.Dict) else [value]
                for constant in values:
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        prefixes.add(constant.value.rstrip("_"))
    return frozenset(p for p in prefixes if p)


def assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def service_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SERVICE.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path))


def sdk_bases(tree: ast.Module) -> dict[str, type]:
    """Names this module imports from the SDKs that are classes: name -> class."""
    classes: dict[str, type] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and is_sdk_module(node.module):
            for alias in node.names:
                try:
                    value = getattr(importlib.import_module(node.module), alias.name, None)
                except ImportError:
                    continue
                if isinstance(value, type):
                    classes[alias.asname or alias.name] = value
    return classes


def subclasses_sdk(node: ast.ClassDef, bases: dict[str, type]) -> list[type]:
    found = []
    for base in node.bases:
        expression = base.value if isinstance(base, ast.Subscript) else base
        if isinstance(expression, ast.Name) and expression.id in bases:
            found.append(bases[expression.id])
    return found


def own_private_names(modules: list[tuple[str, ast.Module]]) -> set[str]:
    """`_x` names our code defines, except overrides of SDK members (those are the SDK's)."""
    names: set[str] = set()
    for _, tree in modules:
        bases = sdk_bases(tree)
        overrides: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                sdk_classes = subclasses_sdk(node, bases)
                for member in node.body:
                    name = getattr(member, "name", None)
                    if name and any(hasattr(cls, name) for cls in sdk_classes):
                        overrides.add(id(member))
        for node in ast.walk(tree):
            if id(node) in overrides:
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and not is_sdk_module(node.name):
                names.add((node.asname or node.name).split(".")[0])
    return {name for name in names if is_private(name)}


NAME_LOOKUPS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def name_strings(tree: ast.Module) -> set[int]:
    """Strings used as names: looked up with getattr & co., compared, or module constants."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in NAME_LOOKUPS and len(node.args) >= 2:
                ids.add(id(node.args[1]))
        elif isinstance(node, ast.Compare):
            ids.update(id(operand) for operand in [node.left, *node.comparators])
    for statement in tree.body:
        _, value = assignment(statement)
        if value is not None:
            ids.add(id(value))
    return ids


def scan(path: str, tree: ast.Module, own: set[str]) -> Iterator[Finding]:
    def foreign(name: str) -> bool:
        return (
            is_private(name)
            and name not in own
            and name not in PUBLIC_UNDERSCORE_NAMES
            and sdk_defines(name)
        )

    names = name_strings(tree)
    bases = sdk_bases(tree)
    prefixes = sdk_id_prefixes()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and node.module and is_sdk_module(node.module):
            for segment in node.module.split("."):
                if is_private(segment):
                    yield Finding(path, line, node.module, "imports from the private module")
            for alias in node.names:
                if is_private(alias.name):
                    yield Finding(path, line, alias.name, f"imports from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if is_sdk_module(alias.name) and any(map(is_private, alias.name.split("."))):
                    yield Finding(path, line, alias.name, "imports the private module")
        elif isinstance(node, ast.Attribute) and foreign(node.attr):
            yield Finding(path, line, node.attr, "uses the SDK's private attribute")
        elif isinstance(node, ast.ClassDef):
            for cls in subclasses_sdk(node, bases):
                for member in node.body:
                    name = getattr(member, "name", "")
                    if is_private(name) and hasattr(cls, name):
                        yield Finding(
                            path, member.lineno, name, f"overrides a private of {cls.__name__}"
                        )
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr == "__qualname__" for o in operands):
                yield Finding(path, line, "__qualname__", "matches code by its qualified name")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in names:
                for token in re.findall(r"(?<![\w.])_[A-Za-z]\w*", node.value):
                    if foreign(token):
                        yield Finding(path, line, token, "names the SDK's private in a string")
            for prefix in prefixes:
                if node.value.startswith(f"{prefix}_") and len(prefix) >= 2:
                    yield Finding(path, line, prefix, "copies the SDK's private id prefix")


def all_findings() -> list[Finding]:
    modules = list(service_modules())
    own = own_private_names(modules)
    return [finding for path, tree in modules for finding in scan(path, tree, own)]


def test_no_module_uses_private_names_of_the_sdks() -> None:
    unexplained = [f for f in all_findings() if (f.path, f.name) not in ALLOWED]
    assert not unexplained, (
        "private SDK names (use a public API, or allow-list with the reason):\n"
        + "\n".join(map(str, unexplained))
    )


def test_every_allowed_entry_is_still_needed() -> None:
    found = {(f.path, f.name) for f in all_findings()}
    stale = [f"{path}: {name}" for path, name in ALLOWED if (path, name) not in found]
    assert not stale, "allow-list entries no longer found (delete them):\n" + "\n".join(stale)


# --- the scan itself finds what it must (each seam this project once had) ----------------

SEAMS = {
    "from agents import _debug\n_debug.DONT_LOG_MODEL_DATA = True\n": "_debug",
    "from agents._debug import DONT_LOG_MODEL_DATA\n": "agents._debug",
    "import agents._debug\n": "agents._debug",
    "from chatkit.store import _ID_PREFIXES\n": "_ID_PREFIXES",
    "from chatkit.server import ChatKitServer\n"
    "class S(ChatKitServer):\n"
    "    async def go(self, request):\n"
    "        return self._process_streaming(request)\n": "_process_streaming",
    "class M:\n"
    "    async def close(self):\n"
    "        await self._inner._process_non_streaming(1)\n": "_process_non_streaming",
    "from agents import Model\n"
    "class Metered(Model):\n"
    "    async def _cleanup_on_run_end(self, owner):\n"
    "        await self.inner._cleanup_on_run_end(owner)\n": "_cleanup_on_run_end",
    "failed = getattr(ctx, '_function_tool_default_failure_handled', False)\n": (
        "_function_tool_default_failure_handled"
    ),
    "FLAG = '_function_tool_default_failure_handled'\n": "_function_tool_default_failure_handled",
    "match = coro.__qualname__ == '_AsyncQueueIterator.__anext__'\n": "__qualname__",
    "thread_id = 'thr_' + suffix\n": "thr",
}


@pytest.mark.parametrize("source", list(SEAMS))
def test_the_scan_finds_each_kind_of_seam(source: str) -> None:
    tree = ast.parse(source)
    names = {finding.name for finding in scan("example.py", tree, set())}
    assert SEAMS[source] in names


def test_the_scan_leaves_our_own_private_names_alone() -> None:
    source = "class Store:\n    def __init__(self):\n        self._lock = 1\n    def _run(self):\n        return self._lock\n"
    tree = ast.parse(source)
    own = own_private_names([("example.py", tree)])
    assert list(scan("example.py", tree, own)) == []
