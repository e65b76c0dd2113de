"""Import boundaries: `service.observability` and `service.lifecycle` are leaves (any layer may
use them without cycles), and prometheus_client loads only after the metrics directory is set."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import service

ROOT = Path(service.__file__).parent
ALLOWED = (
    "service.settings",
    "service.observability",
    "service.lifecycle",
    "service.request_context",
)


def own_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "service" or name.startswith("service.")}


def test_observability_and_lifecycle_import_only_settings_and_each_other() -> None:
    files = [*sorted((ROOT / "observability").glob("*.py")), ROOT / "lifecycle.py"]
    for path in files:
        for name in own_imports(path):
            assert name.startswith(ALLOWED), f"{path.name} imports {name}"


def test_the_server_entry_points_leave_prometheus_client_unimported() -> None:
    """prometheus_client picks memory or files once, at import: the CLI and the supervisor must
    not import it before `prepare_metrics_directory()` exports PROMETHEUS_MULTIPROC_DIR."""
    probe = "import sys, service.cli, service.serving; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
