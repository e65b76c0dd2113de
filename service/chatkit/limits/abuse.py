"""The three abuse limits and what a caller over one of them is told.

- requests per minute, per user (a moving window: every ChatKit request counts);
- open streams, per user (a counter taken when a stream starts, given back when it ends);
- model tokens per tenant over a day (a fixed 24-hour window that starts with the tenant's
  first charged call): checked before each streamed request and each model call, charged with
  the usage each model call reports.

Keys are per tenant and user (a user id is only unique within its tenant).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from urllib.parse import quote

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from service.chatkit.errors import LimitExceeded
from service.chatkit.limits.counters import Counters, open_storage, redis_address
from service.chatkit.streaming import Ending, StreamObserver
from service.observability.metrics import Metrics
from service.request_context import RequestContext
from service.settings import Settings

STREAM_SLOT_LEASE_SECONDS = 3600
"""A stream slot left behind by a process that died frees itself after this long."""
STREAM_RETRY_AFTER_SECONDS = 5

REQUESTS = "requests_per_minute"
STREAMS = "concurrent_streams"
TOKENS = "token_budget"


def _key(*parts: str) -> str:
    # Ids may hold the library's "/" separator: quote them so two owners never share a key.
    return "/".join(quote(part, safe="") for part in parts)


class StreamSlot:
    """One open stream of a user; `release()` (idempotent) gives the slot back."""

    def __init__(self, limits: AbuseLimits | None = None, key: str = "") -> None:
        self._limits = limits
        self._key = key
        self._released = limits is None
        self._tasks: set[asyncio.Task[None]] = set()

    def release(self) -> None:
        if self._released or self._limits is None:
            return
        self._released = True
        task = asyncio.get_running_loop().create_task(self._limits.close_stream(self._key))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    def observe(self, observer: StreamObserver) -> StreamObserver:
        """`observer`, releasing this slot when the stream ends, however it ends."""
        return _Releasing(observer, self)


class _Releasing:
    def __init__(self, observer: StreamObserver, slot: StreamSlot) -> None:
        self._observer = observer
        self._slot = slot

    def error_event(self, error: BaseException) -> bytes:
        return self._observer.error_event(error)

    def ended(self, ending: Ending, error: BaseException | None) -> None:
        self._slot.release()
        self._observer.ended(ending, error)


NO_SLOT = StreamSlot()
"""For requests that hold no slot (JSON requests, or no stream limit)."""


@dataclass(frozen=True, slots=True)
class LimitSettings:
    requests_per_minute: int
    streams_per_user: int
    tenant_daily_tokens: int | None


class AbuseLimits:
    def __init__(self, counters: Counters, settings: LimitSettings, metrics: Metrics) -> None:
        self._counters = counters
        self._settings = settings
        self._metrics = metrics
        self._moving = MovingWindowRateLimiter(counters.storage)
        self._fixed = FixedWindowRateLimiter(counters.storage)
        self._per_minute = RateLimitItemPerMinute(max(settings.requests_per_minute, 1))
        self._per_day = RateLimitItemPerDay(max(settings.tenant_daily_tokens or 0, 1))

    @property
    def budget_enabled(self) -> bool:
        return self._settings.tenant_daily_tokens is not None

    # --- requests ------------------------------------------------------------------------------

    async def admit_request(self, context: RequestContext) -> None:
        """Count one request of the user; `LimitExceeded` when the minute's share is used up."""
        if self._settings.requests_per_minute <= 0:
            return
        owner = _key(context.tenant_id, context.user_id)
        item = self._per_minute
        if await self._counters.guard(lambda: self._moving.hit(item, "requests", owner), True):
            return
        raise await self._window_full(
            REQUESTS,
            f"Too many requests: at most {item.amount} a minute per user. Wait a moment.",
            (self._moving, item, "requests", owner),
        )

    # --- streams -------------------------------------------------------------------------------

    async def open_stream(self, context: RequestContext) -> StreamSlot:
        """A slot for one more open stream of the user; `LimitExceeded` when all are taken or
        the tenant's token budget is used up."""
        await self.check_budget(context.tenant_id)
        limit = self._settings.streams_per_user
        if limit <= 0:
            return NO_SLOT
        key = _key("streams", context.tenant_id, context.user_id)
        storage = self._counters.storage
        open_now = await self._counters.guard(
            lambda: storage.incr(key, STREAM_SLOT_LEASE_SECONDS, 1), None
        )
        if open_now is None:  # unreachable store: no slot to give back later
            return NO_SLOT
        if open_now > limit:
            await self.close_stream(key)
            raise self._exceeded(
                STREAMS,
                f"Too many answers at once: at most {limit} open per user. "
                "Wait for one to finish, then try again.",
                time.time() + STREAM_RETRY_AFTER_SECONDS,
            )
        return StreamSlot(self, key)

    async def close_stream(self, key: str) -> None:
        storage = self._counters.storage
        left = await self._counters.guard(
            lambda: storage.incr(key, STREAM_SLOT_LEASE_SECONDS, -1), 0
        )
        if left < 0:  # the lease ran out while streams were open: start again from zero
            await self._counters.guard(lambda: storage.clear(key), None)

    # --- token budget --------------------------------------------------------------------------

    async def check_budget(self, tenant_id: str) -> None:
        """`LimitExceeded` when the tenant has used its daily model tokens."""
        if not self.budget_enabled:
            return
        item, tenant = self._per_day, _key(tenant_id)
        if await self._counters.guard(lambda: self._fixed.test(item, "tokens", tenant), True):
            return
        raise await self._window_full(
            TOKENS,
            "Your organisation has used its model token budget for today. "
            "Try again once it renews, or ask an administrator to raise it.",
            (self._fixed, item, "tokens", tenant),
        )

    async def charge_tokens(self, tenant_id: str, tokens: int) -> None:
        """Add a model call's tokens to the tenant's daily use."""
        if not self.budget_enabled or tokens <= 0:
            return
        item, tenant = self._per_day, _key(tenant_id)
        await self._counters.guard(
            lambda: self._fixed.hit(item, "tokens", tenant, cost=tokens), True
        )

    # --- answers -------------------------------------------------------------------------------

    async def _window_full(
        self, limit: str, message: str, window: tuple[RateLimiter, RateLimitItem, str, str]
    ) -> LimitExceeded:
        """The answer to a full rate-limit window: retry once it frees up, when the store can
        say. `window`: (limiter, item, namespace, key), as the caller checked it."""
        limiter, item, namespace, key = window
        stats = await self._counters.guard(
            lambda: limiter.get_window_stats(item, namespace, key), None
        )
        return self._exceeded(limit, message, stats.reset_time if stats is not None else None)

    def _exceeded(self, limit: str, message: str, reset_time: float | None) -> LimitExceeded:
        self._metrics.limit_rejections.labels(limit).inc()
        wait = 1 if reset_time is None else math.ceil(reset_time - time.time())
        return LimitExceeded(limit, message, retry_after=max(wait, 1))


def create_limits(settings: Settings, metrics: Metrics) -> AbuseLimits:
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    counters = Counters(
        open_storage(redis_url, settings.redis_key_prefix),
        address=redis_address(redis_url) if redis_url else None,
        failures=metrics.limit_store_failures,
    )
    return AbuseLimits(
        counters,
        LimitSettings(
            requests_per_minute=settings.rate_limit_per_minute,
            streams_per_user=settings.max_concurrent_streams_per_user,
            tenant_daily_tokens=settings.tenant_daily_token_budget,
        ),
        metrics,
    )
