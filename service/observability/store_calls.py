"""Times a Store's operations (`chatkit_store_operation_duration_seconds{operation}`).

The methods are wrapped on the store instance itself, so everything else about the store (turn
locks, id generation, whatever a subclass adds) stays exactly its own. A call a store makes to
itself (say `add_thread_item` calling `save_item`) is part of the outer operation and is not
observed again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from chatkit.store import NotFoundError
from prometheus_client import Histogram

from service.observability.metrics import Metrics
from service.request_context import RequestContext

STORE_OPERATIONS: tuple[str, ...] = (
    # the ChatKit Store contract
    "load_thread",
    "save_thread",
    "load_thread_items",
    "load_threads",
    "delete_thread",
    "add_thread_item",
    "save_item",
    "load_item",
    "delete_thread_item",
    "save_attachment",
    "load_attachment",
    "delete_attachment",
    # ours
    "save_feedback",
    "load_feedback",
    "ping",
)

StoreT = TypeVar("StoreT")

# A re-entrancy guard, not request state: set and reset by `timed` around one call, read by
# nothing else. The wrappers sit on the store instance (callers keep the store itself), so the
# store's calls to itself reach them too; only a per-task flag tells those apart from the next
# request's calls on the same shared store.
_inside_operation: ContextVar[bool] = ContextVar("inside_store_operation", default=False)


def meter_store(store: StoreT, metrics: Metrics) -> StoreT:
    for name in STORE_OPERATIONS:
        method = getattr(store, name)
        setattr(store, name, _timed(method, metrics.store_operation_duration.labels(name)))
    return store


def _timed(
    method: Callable[..., Awaitable[Any]], histogram: Histogram
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if _inside_operation.get():
            return await method(*args, **kwargs)
        token = _inside_operation.set(True)
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except NotFoundError:
            raise  # an answer, not a failure
        except Exception as exc:
            _turn_failed(exc, args, kwargs)
            raise
        finally:
            _inside_operation.reset(token)
            histogram.observe(time.perf_counter() - started)

    return timed


def _turn_failed(exc: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Tell the streamed request's turn (on the context every store call takes) why it failed:
    the SDK turns store failures into error events without telling anyone else."""
    context = kwargs.get("context", args[-1] if args else None)
    if isinstance(context, RequestContext) and context.turn is not None:
        context.turn.fail(exc)
