"""Our own request failures; `service.chatkit.failures` says how each one is answered."""

from __future__ import annotations


class ClientError(Exception):
    """A client mistake, answered with `status` and a one-line reason."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ClientError):
    pass


class FeatureNotEnabled(ClientError):
    code = "not_enabled"


class Forbidden(ClientError):
    """The caller's role does not allow this."""

    status = 403
    code = "forbidden"


class ConversationBusy(Exception):
    """Another turn holds the thread; the stream answers with a ChatKit error event."""

    def __init__(
        self,
        message: str = (
            "This conversation is still answering another message. "
            "Wait for that answer to finish, then try again."
        ),
    ) -> None:
        super().__init__(message)
        self.message = message


class LimitExceeded(Exception):
    """An abuse limit is used up (`limit` names it): 429 with `Retry-After`, or, mid-turn, a
    ChatKit error event that says so."""

    def __init__(self, limit: str, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.retry_after = retry_after


class ServerDraining(Exception):
    """The server is shutting down and takes no new streams."""
