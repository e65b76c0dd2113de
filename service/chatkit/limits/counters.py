"""Where limits count: process memory, or Redis shared by replicas, failing open.

Every call goes through `Counters.guard`: when the shared store cannot be reached, the call
gives its fail-open answer instead of raising, the outage is logged once (and its end once),
each call answered that way is counted in `chatkit_limit_store_failures_total`, and Redis is
left alone for a few seconds so that requests do not each wait on a dead connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.errors import StorageError
from prometheus_client import Counter

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_TIMEOUT_SECONDS = 1.0
"""Longest a limit check waits on Redis before it is answered as if Redis were down."""
OUTAGE_BACKOFF_SECONDS = 5.0
"""After a failure, how long limits are not enforced before Redis is tried again."""


def redis_address(url: str) -> str:
    """`host:port/db` of a Redis URL, never its password."""
    parts = urlsplit(url)
    port = parts.port or 6379
    return f"{parts.hostname or 'localhost'}:{port}{parts.path or ''}"


def open_storage(redis_url: str | None, key_prefix: str) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    # Imported only when used: the Redis client is ~6 MB of every worker's memory.
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        # One attempt per call: `Counters` decides what a failure means (fail open).
        "retry": Retry(NoBackoff(), 0),
    }
    return RedisStorage(
        "async+" + redis_url,
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        **options,
    )


class Counters:
    def __init__(self, storage: Storage, *, address: str | None, failures: Counter) -> None:
        """`address`: the shared store's `host:port/db` for log lines (None: in process)."""
        self.storage = storage
        self._address = address
        self._failures = failures
        self._down_until: float | None = None

    @property
    def shared(self) -> bool:
        return self._address is not None

    async def guard(self, call: Callable[[], Awaitable[T]], fail_open: T) -> T:
        """`call()`, or `fail_open` when the shared store is unreachable."""
        now = time.monotonic()
        if self._down_until is not None and now < self._down_until:
            self._failures.inc()
            return fail_open
        try:
            result = await call()
        except (StorageError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return fail_open
        if self._down_until is not None:
            self._down_until = None
            logger.warning("rate-limit store at %s is reachable again", self._address)
        return result

    def _failed(self, exc: BaseException) -> None:
        self._failures.inc()
        if self._down_until is None:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            logger.warning(
                "rate-limit store at %s is unreachable (%s); limits are not enforced until it "
                "answers again",
                self._address or "memory",
                type(cause).__name__,
            )
        self._down_until = time.monotonic() + OUTAGE_BACKOFF_SECONDS
