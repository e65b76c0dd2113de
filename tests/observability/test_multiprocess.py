"""Choosing the multiprocess metrics directory before prometheus_client is imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.observability.multiprocess import MetricsImportedTooEarly, prepare_metrics_directory
from service.settings import Settings

PROBE = """
import json, sys
from service.observability.multiprocess import prepare_metrics_directory
from service.settings import Settings
settings = prepare_metrics_directory(Settings(_env_file=None, workers=2))
from prometheus_client import values
print(json.dumps({"dir": str(settings.prometheus_multiproc_dir),
                  "multiprocess": values.ValueClass.__name__ != "MutexValue"}))
"""


def test_several_workers_get_a_fresh_directory_when_none_is_set() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env
    )
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    directory = Path(facts["dir"])
    try:
        assert facts["multiprocess"] is True
        assert directory.is_dir()
        assert directory.name.startswith("chatkit-metrics-")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_one_worker_without_a_directory_keeps_metrics_in_memory() -> None:
    settings = Settings(_env_file=None, workers=1)  # type: ignore[call-arg]
    assert prepare_metrics_directory(settings) is settings


def test_preparing_after_prometheus_client_was_imported_is_refused(tmp_path: Path) -> None:
    import prometheus_client  # noqa: F401  (already imported by the other tests, to be sure)

    settings = Settings(_env_file=None, prometheus_multiproc_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(MetricsImportedTooEarly):
        prepare_metrics_directory(settings)
