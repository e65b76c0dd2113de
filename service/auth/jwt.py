"""Verifying a JWT (PyJWT) and turning each way it can fail into a one-line reason."""

from __future__ import annotations

from typing import Any

import jwt
from jwt import exceptions

from service.auth.errors import AuthenticationError
from service.auth.keys import KeySource

CLOCK_SKEW_SECONDS = 30
"""`exp`, `nbf` and `iat` are checked with this allowance for clocks that disagree."""


class JwtVerifier:
    def __init__(self, keys: KeySource, *, issuer: str | None, audience: str | None) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, algorithm, expiry, issuer and audience pass."""
        try:
            header = jwt.get_unverified_header(token)
        except exceptions.PyJWTError:
            raise AuthenticationError(
                "the token is not a well-formed JWT", reason="malformed"
            ) from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise AuthenticationError("unsigned tokens are not accepted", reason="bad_algorithm")
        key, algorithms = await self._keys.key_for(header)
        issuer = self._issuer or self._keys.issuer()
        try:
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except exceptions.PyJWTError as exc:
            raise _refusal(exc) from None


def _refusal(exc: exceptions.PyJWTError) -> AuthenticationError:
    # Subclasses before their bases (ExpiredSignatureError is an InvalidTokenError, ...).
    if isinstance(exc, exceptions.ExpiredSignatureError):
        return AuthenticationError("the token has expired", reason="expired")
    if isinstance(exc, exceptions.ImmatureSignatureError | exceptions.InvalidIssuedAtError):
        return AuthenticationError("the token is not valid yet", reason="not_yet_valid")
    if isinstance(exc, exceptions.InvalidAudienceError):
        return AuthenticationError(
            "the token is meant for another audience", reason="wrong_audience"
        )
    if isinstance(exc, exceptions.InvalidIssuerError):
        return AuthenticationError("the token comes from another issuer", reason="wrong_issuer")
    if isinstance(exc, exceptions.MissingRequiredClaimError):
        reason = {"aud": "wrong_audience", "iss": "wrong_issuer"}.get(exc.claim, "missing_claim")
        return AuthenticationError(f"the token has no '{exc.claim}' claim", reason=reason)
    if isinstance(exc, exceptions.InvalidSubjectError | exceptions.InvalidJTIError):
        return AuthenticationError(
            "the token's 'sub' or 'jti' claim is not a string", reason="invalid_claim"
        )
    if isinstance(exc, exceptions.InvalidAlgorithmError | exceptions.InvalidKeyError):
        return AuthenticationError(
            "the token's algorithm is not accepted for its key", reason="bad_algorithm"
        )
    if isinstance(exc, exceptions.InvalidSignatureError):
        return AuthenticationError("the token's signature does not verify", reason="bad_signature")
    if isinstance(exc, exceptions.DecodeError):
        return AuthenticationError("the token is not a well-formed JWT", reason="malformed")
    return AuthenticationError("the token is not valid", reason="invalid")
