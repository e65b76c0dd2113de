"""How an upload can fail, each answered with its status and a one-line reason."""

from __future__ import annotations

from typing import Any

from service.chatkit.errors import ClientError


class UploadError(ClientError):
    """A failed upload or file; subclasses name their answer in the class line:
    `class Gone(UploadError, status=410, code="gone")`."""

    default_message = "the upload failed"

    def __init_subclass__(cls, *, status: int = 400, code: str = "bad_upload", **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls.status, cls.code = status, code

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class UploadTooLarge(UploadError, status=413, code="too_large"):
    """Larger than `ATTACHMENTS_MAX_BYTES`."""


class UnsupportedFileType(UploadError, status=415, code="unsupported_type"):
    """A type (judged from the bytes) that `ATTACHMENTS_ALLOWED_TYPES` does not allow."""


class BadUpload(UploadError):
    """A broken form, an empty file, a refused upload."""


class InvalidLink(UploadError, status=404, code="not_found"):
    """A signed link that is forged, expired or for another file: like an unknown id."""

    default_message = "this link is not valid"


class NotUploaded(UploadError, status=409, code="not_uploaded"):
    """A message uses a two-phase attachment whose bytes never reached the bucket."""


class StorageUnavailable(UploadError, status=503, code="storage_unavailable"):
    """The file storage cannot be reached; uploads degrade while chat keeps working."""

    default_message = "File storage is unavailable right now; try the upload again in a moment."
