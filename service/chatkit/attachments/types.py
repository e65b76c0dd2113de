"""Which files may be uploaded, judged from their bytes rather than the declared type."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import filetype

from service.chatkit.attachments.errors import UnsupportedFileType

SNIFF_BYTES = 8192
"""Enough of the start of a file to recognise it."""

TEXT_TYPES = ("text/*", "application/json", "application/xml", "application/x-yaml")
FALLBACK_TYPE = "application/octet-stream"
ZIP_CONTAINERS = (
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.oasis.opendocument.*",
    "application/epub+zip",
)
"""Formats that are zip archives inside: their bytes alone may only say `application/zip`."""


def is_text_type(mime_type: str) -> bool:
    return any(fnmatchcase(mime_type, pattern) for pattern in TEXT_TYPES)


def media_type(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()


def sniff(head: bytes, declared: str) -> str:
    """The type of a file whose first bytes are `head` (the declared type only for text)."""
    found = filetype.guess_mime(head)
    declared = media_type(declared)
    if found == "application/zip" and any(fnmatchcase(declared, p) for p in ZIP_CONTAINERS):
        return declared
    if found:
        return str(found)
    if is_text_type(declared) and _looks_like_text(head):
        return declared
    return "text/plain" if _looks_like_text(head) else FALLBACK_TYPE


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3
    return True


@dataclass(frozen=True, slots=True)
class TypePolicy:
    allowed: tuple[str, ...]

    @classmethod
    def parse(cls, setting: str) -> TypePolicy:
        return cls(tuple(p.strip().lower() for p in setting.split(",") if p.strip()))

    def allows(self, mime_type: str) -> bool:
        return any(fnmatchcase(media_type(mime_type), pattern) for pattern in self.allowed)

    def check(self, mime_type: str) -> None:
        if not self.allows(mime_type):
            raise UnsupportedFileType(f"files of type {media_type(mime_type)} are not accepted")
