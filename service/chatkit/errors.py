"""Client mistakes as exceptions that carry their HTTP status and a one-line reason."""

from __future__ import annotations


class ClientError(Exception):
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
