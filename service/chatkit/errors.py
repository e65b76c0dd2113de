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


class ServerDraining(Exception):
    """The server is shutting down and takes no new streams."""
