"""V4 signed URLs for the GCS bucket: browsers PUT two-phase uploads straight to it and GET
image previews straight from it, without the bytes passing through this service.

Who signs (`ATTACHMENTS_SIGNED_URLS=auto`), decided once per process and logged:

- credentials holding a private key (a service-account key file, impersonated credentials)
  sign locally;
- Workload Identity / Compute Engine credentials (no private key) sign through the IAM
  Credentials API's `signBlob`, as their own service account, which then needs
  `roles/iam.serviceAccountTokenCreator` on itself;
- anything else (user credentials, none at all): no signed URLs; uploads and previews keep
  using this service's own links.

Credentials are Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
file, the metadata server), looked up even when `STORAGE_EMULATOR_HOST` makes the storage client
itself anonymous: that is how the tests sign for fake-gcs-server with a generated key.

Signing is blocking (a signBlob is an HTTP call, a token refresh too): callers run `sign` in a
worker thread. Signatures are secrets for as long as the URL is valid: never log a signed URL.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal

import google.auth
from google.auth import credentials as auth_credentials
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import Request
from google.cloud import storage

logger = logging.getLogger(__name__)

SignedUrls = Literal["auto", "off"]
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class UrlSigner:
    """Signs V4 URLs with one set of credentials: `email` None signs with their private key,
    otherwise through IAM signBlob as that service account with a fresh access token."""

    def __init__(self, credentials: auth_credentials.Credentials, email: str | None) -> None:
        self.credentials = credentials
        self.email = email
        self._refresh = threading.Lock()

    @property
    def how(self) -> str:
        if self.email is None:
            signer = getattr(self.credentials, "signer_email", "?")
            return f"signed locally with the private key of {signer}"
        return f"signed through IAM signBlob as {self.email}"

    def _auth(self) -> dict[str, Any]:
        if self.email is None:
            return {"credentials": self.credentials}
        with self._refresh:
            if not self.credentials.valid:
                self.credentials.refresh(Request())  # type: ignore[no-untyped-call]
            token = self.credentials.token
        return {
            "credentials": self.credentials,
            "service_account_email": self.email,
            "access_token": token,
        }

    def sign(self, blob: storage.Blob, **kwargs: Any) -> str:
        """Blocking: `blob.generate_signed_url(version="v4", ...)` with these credentials."""
        return str(blob.generate_signed_url(version="v4", **self._auth(), **kwargs))


@dataclass(frozen=True, slots=True)
class Resolved:
    signer: UrlSigner | None
    reason: str
    """How URLs are signed, or why they are not (for the start-up log line)."""


def resolve_signer(mode: SignedUrls) -> Resolved:
    """Blocking: the signer the process's credentials allow (see the module docstring)."""
    if mode == "off":
        return Resolved(None, "ATTACHMENTS_SIGNED_URLS=off")
    try:
        found, _ = google.auth.default(scopes=SCOPES)
    except (GoogleAuthError, OSError, ValueError) as exc:
        return Resolved(None, f"no Google credentials could be loaded ({type(exc).__name__})")
    return signer_for(found)


def signer_for(credentials: auth_credentials.Credentials) -> Resolved:
    """Blocking (refreshes compute credentials to learn their service account)."""
    if isinstance(credentials, auth_credentials.Signing) and getattr(
        credentials, "signer_email", None
    ):
        signer = UrlSigner(credentials, None)
        return Resolved(signer, signer.how)
    if getattr(credentials, "service_account_email", None) is None:
        kind = type(credentials).__name__
        return Resolved(None, f"{kind} credentials hold no key and no service account to sign as")
    try:
        if not credentials.valid:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
    except (GoogleAuthError, OSError, ValueError) as exc:
        return Resolved(None, f"the credentials could not be refreshed ({type(exc).__name__})")
    signer = UrlSigner(credentials, str(getattr(credentials, "service_account_email", "")))
    return Resolved(signer, signer.how)
