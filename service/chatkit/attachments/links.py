"""Signed links to this service that a browser can follow without our auth headers, bound to
tenant, user and attachment id (itsdangerous). Both kinds expire after `max_age_seconds`
(`ATTACHMENTS_LINK_SECONDS`); preview links are signed afresh whenever attachments are loaded,
so a reloaded thread never shows a dead image, and deleting the file revokes them at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from service.chatkit.attachments.errors import InvalidLink

LinkPurpose = Literal["upload", "download"]
EXPIRED: dict[LinkPurpose, str] = {
    "upload": "this upload link has expired; attach the file again",
    "download": "this link has expired; reload the conversation",
}


@dataclass(frozen=True, slots=True)
class LinkGrant:
    tenant_id: str
    user_id: str
    attachment_id: str


class LinkSigner:
    def __init__(self, key: str | None, max_age_seconds: int) -> None:
        self._key = key or secrets.token_urlsafe(32)
        self.max_age_seconds = max_age_seconds

    def _serializer(self, purpose: LinkPurpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt=f"chatkit-attachment-{purpose}")

    def sign(self, purpose: LinkPurpose, grant: LinkGrant) -> str:
        return self._serializer(purpose).dumps(
            [grant.tenant_id, grant.user_id, grant.attachment_id]
        )

    def verify(self, purpose: LinkPurpose, token: str, attachment_id: str) -> LinkGrant:
        try:
            tenant_id, user_id, signed_id = self._serializer(purpose).loads(
                token, max_age=self.max_age_seconds
            )
        except SignatureExpired as exc:
            raise InvalidLink(EXPIRED[purpose]) from exc
        except (BadSignature, ValueError, TypeError) as exc:
            raise InvalidLink("this link is not valid") from exc
        if signed_id != attachment_id:
            raise InvalidLink("this link is not valid")
        return LinkGrant(str(tenant_id), str(user_id), str(signed_id))
