"""How an upload can fail, each answered with its status and a one-line reason."""

from __future__ import annotations

from service.chatkit.errors import ClientError


class UploadTooLarge(ClientError):
    status = 413
    code = "too_large"


class UnsupportedFileType(ClientError):
    status = 415
    code = "unsupported_type"


class BadUpload(ClientError):
    code = "bad_upload"


class InvalidLink(ClientError):
    """A signed link that is forged, expired or for another file: like an unknown id."""

    status = 404
    code = "not_found"


class StorageUnavailable(ClientError):
    """The file storage cannot be reached; uploads degrade while chat keeps working."""

    status = 503
    code = "storage_unavailable"

    def __init__(
        self,
        message: str = "File storage is unavailable right now; try the upload again in a moment.",
    ) -> None:
        super().__init__(message)
