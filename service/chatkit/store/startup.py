"""Opening the store at start-up without crash-looping while the database is unreachable.

The first attempt runs before the server accepts requests. If the database cannot be reached
the server starts anyway, not ready (`/readyz` answers 503 with the cause, requests that need
the store 503), and keeps trying in the background with capped exponential backoff. Any other
failure (a schema newer than this release, one too old with automatic migration off) is not
retried: on the first attempt it stops start-up (raised out of `start`, a
`StoreConfigurationError` for what the operator must fix: a SQLite file that cannot be opened, a
schema of another release); later it leaves the process not ready, with the cause in the log and
in `/readyz`.
"""

from __future__ import annotations

import asyncio
import logging
import random

from service.chatkit.store.base import ChatStore, SchemaStatus, StoreUnavailableError

logger = logging.getLogger(__name__)


class StoreStartup:
    def __init__(
        self,
        store: ChatStore,
        *,
        migrate: bool,
        retry_max_seconds: float,
        first_retry_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.migrate = migrate
        self.retry_max_seconds = retry_max_seconds
        self.first_retry_seconds = min(first_retry_seconds, retry_max_seconds)
        self._retrying: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()

    async def start(self) -> None:
        try:
            status = await self.store.open(migrate=self.migrate)
        except StoreUnavailableError as exc:
            logger.warning(
                "database unreachable at start-up (%s); serving as not ready and retrying", exc
            )
            self._retrying = asyncio.create_task(self._retry())
            return
        self._opened(status)

    async def _retry(self) -> None:
        delay = self.first_retry_seconds
        attempt = 1
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter: pods apart
            attempt += 1
            try:
                status = await self.store.open(migrate=self.migrate)
            except StoreUnavailableError as exc:
                delay = min(delay * 2, self.retry_max_seconds)
                logger.warning(
                    "database still unreachable (attempt %d: %s); next try in about %.1f s",
                    attempt,
                    exc,
                    delay,
                )
                continue
            except Exception:
                logger.exception("the store cannot be opened; this process stays not ready")
                return
            self._opened(status)
            return

    def _opened(self, status: SchemaStatus) -> None:
        if status.applied:
            logger.info("database schema migrated to version %s", status.current)
        logger.info("store ready (schema version %s)", status.current)
        self.opened.set()

    async def stop(self) -> None:
        task, self._retrying = self._retrying, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.store.close()
