"""Why a request was not let in."""

from __future__ import annotations


class AuthenticationError(Exception):
    """The request carries no acceptable identity: 401 with `WWW-Authenticate: Bearer`.

    The message is one line for the caller and never repeats the token; `reason` is a short
    fixed label (`missing`, `expired`, ...) for metrics and logs.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class IdentityProviderUnavailable(Exception):
    """The token's signing keys could not be fetched from the issuer: our outage, not the
    caller's mistake, so a 503 rather than a 401 (which would send users back to sign in)."""

    reason = "keys_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
