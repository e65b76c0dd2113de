"""A loopback TCP proxy in front of the test PostgreSQL that a test can cut and restore
(bench/tcp_proxy.py's, which bench/resilience.py uses the same way)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

from bench.tcp_proxy import TcpProxy
from tests.support.postgres import TEST_DATABASE_URL

__all__ = ["TcpProxy", "proxy_to_test_database"]


@contextlib.contextmanager
def proxy_to_test_database() -> Iterator[TcpProxy]:
    """A proxy to the test PostgreSQL (TEST_DATABASE_URL's host and port)."""
    parts = urlsplit(TEST_DATABASE_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        yield proxy
    finally:
        proxy.stop()
