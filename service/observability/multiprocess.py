"""Metrics shared by several worker processes (prometheus-client's multiprocess mode).

prometheus-client decides once, when it is first imported, whether values live in memory or in
files under PROMETHEUS_MULTIPROC_DIR, and it reads that from the environment. So the directory
is chosen, wiped and exported here, before anything imports prometheus_client (the server
modules import it lazily for that reason). Spawned workers inherit the environment.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from service.settings import Settings

logger = logging.getLogger(__name__)

ENV_NAME = "PROMETHEUS_MULTIPROC_DIR"


class MetricsImportedTooEarly(RuntimeError):
    pass


def prepare_metrics_directory(settings: Settings) -> Settings:
    """Settings naming the multiprocess directory to use (none: metrics stay in memory).

    WORKERS>1 needs one; a fresh temp directory is made when PROMETHEUS_MULTIPROC_DIR is unset.
    """
    directory = settings.prometheus_multiproc_dir
    if directory is None and settings.workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="chatkit-metrics-"))
    if directory is None:
        return settings
    if "prometheus_client" in sys.modules:
        raise MetricsImportedTooEarly(
            "prometheus_client was imported before the metrics directory was prepared; "
            "it would keep per-process values"
        )
    wipe(directory)
    # One of two places this service writes the environment (the other: the Agents SDK's logging
    # switches in observability/logging.py): prometheus_client reads it at import.
    os.environ[ENV_NAME] = str(directory)  # noqa: TID251
    logger.info("metrics shared by workers through %s", directory)
    return settings.model_copy(update={"prometheus_multiproc_dir": directory})


def wipe(directory: Path) -> None:
    """Remove values left by earlier processes (a restarted container keeps its volume)."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()


def forget_worker(directory: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (streams in flight, draining)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
