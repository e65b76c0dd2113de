"""`create_attachments(settings)`: the attachments service chosen by `ATTACHMENTS_URL`."""

from __future__ import annotations

from service.chatkit.attachments.blobs import Blobs
from service.chatkit.attachments.links import LinkSigner
from service.chatkit.attachments.local import LocalBlobs, local_root
from service.chatkit.attachments.service import Attachments
from service.chatkit.attachments.types import TypePolicy
from service.settings import DEFAULT_ALLOWED_TYPES, Settings


def create_blobs(url: str, settings: Settings | None = None) -> Blobs:
    if url.startswith("gs://"):
        from service.chatkit.attachments.gcs import GcsBlobs  # the GCS client is heavy to import

        if settings is None:
            return GcsBlobs(url)
        origins = settings.attachments_bucket_cors_origins or ""
        return GcsBlobs(
            url,
            signed_urls=settings.attachments_signed_urls,
            cors_origins=[origin.strip() for origin in origins.split(",") if origin.strip()],
        )
    return LocalBlobs(local_root(url))


def create_attachments(settings: Settings) -> Attachments | None:
    """None when uploads are off (`ATTACHMENTS_URL` empty)."""
    if not settings.attachments_url:
        return None
    key = settings.attachments_signing_key
    return Attachments(
        blobs=create_blobs(settings.attachments_url, settings),
        policy=TypePolicy.parse(settings.attachments_allowed_types or DEFAULT_ALLOWED_TYPES),
        max_bytes=settings.attachments_max_bytes,
        links=LinkSigner(
            key.get_secret_value() if key else None, settings.attachments_link_seconds
        ),
        public_url=settings.attachments_public_url,
    )
