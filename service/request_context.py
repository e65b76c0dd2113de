"""Who is asking, and for a streamed request its `Turn`: the per-request context every Store
method and server hook receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class Turn:
    """One streamed ChatKit request, created by the route and handed down explicitly.

    It holds what must be stopped when the client goes away and the cause that ended the turn,
    if one did: the hooks and store calls that meet a failure record it here, and the stream's
    outcome (metrics, the closing log line) is read from it when the stream ends.
    """

    request_type: str
    request_id: str
    thread_id: str | None = None
    error: BaseException | None = None
    """The first failure met while answering (a model error, a store outage, ...)."""
    _cancellers: list[Callable[[], object]] = field(default_factory=list)
    _thread_listeners: list[Callable[[str], object]] = field(default_factory=list)

    def set_thread(self, thread_id: str) -> None:
        """The thread being answered, once known (a new thread gets its id mid-request)."""
        self.thread_id = thread_id
        for listener in self._thread_listeners:
            listener(thread_id)

    def on_thread(self, listener: Callable[[str], object]) -> None:
        self._thread_listeners.append(listener)

    def fail(self, error: BaseException) -> None:
        """Record why the turn failed; the first cause wins (later ones are consequences)."""
        if self.error is None:
            self.error = error

    def on_cancel(self, cancel: Callable[[], object]) -> None:
        self._cancellers.append(cancel)

    def cancel(self) -> None:
        """Stop everything the turn started (the model run, the title call)."""
        cancellers, self._cancellers = self._cancellers, []
        for cancel in cancellers:
            cancel()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the authenticated user, their tenant and role, and the locale they asked
    in. Both the request's context (below) and the tools' (`service.agents.context`) are one."""

    user_id: str
    tenant_id: str
    role: str = "user"
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext(Caller):
    turn: Turn | None = None
    """Set on streamed requests only."""
