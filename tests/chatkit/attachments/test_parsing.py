"""The streaming multipart reader, type sniffing and signed links, below the HTTP layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.chatkit.attachments.errors import BadUpload, InvalidLink, UnsupportedFileType
from service.chatkit.attachments.links import LinkGrant, LinkSigner
from service.chatkit.attachments.multipart import MultipartFile
from service.chatkit.attachments.service import clean_name
from service.chatkit.attachments.types import TypePolicy, sniff

FILE = bytes(range(256)) * 40
FORM = (
    b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a b.pdf"\r\n'
    b"Content-Type: application/pdf\r\n\r\n" + FILE + b"\r\n--xyz--\r\n"
)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 7, 100, 4096, len(FORM)])
async def test_the_file_part_arrives_whole_however_the_body_is_cut(size: int) -> None:
    form = MultipartFile(pieces(FORM, size), "multipart/form-data; boundary=xyz")
    await form.open()
    assert (form.filename, form.content_type) == ("a b.pdf", "application/pdf")
    assert b"".join([chunk async for chunk in form.chunks()]) == FILE


async def test_a_body_that_stops_inside_the_file_is_refused() -> None:
    form = MultipartFile(pieces(FORM[:-200], 512), "multipart/form-data; boundary=xyz")
    await form.open()
    with pytest.raises(BadUpload, match="before"):
        _ = [chunk async for chunk in form.chunks()]


def test_without_a_boundary_it_is_not_a_form() -> None:
    with pytest.raises(BadUpload, match="multipart/form-data"):
        MultipartFile(pieces(FORM, 10), "multipart/form-data")


def test_types_come_from_the_bytes() -> None:
    assert sniff(b"%PDF-1.7 rest", "image/png") == "application/pdf"
    assert sniff(b"\x89PNG\r\n\x1a\n....", "application/pdf") == "image/png"
    assert sniff("# Heading ✓\n".encode(), "text/markdown") == "text/markdown"
    assert sniff(b"plain words", "application/octet-stream") == "text/plain"
    assert sniff(b"\x00\x01\x02binary", "text/plain") == "application/octet-stream"
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert sniff(b"PK\x03\x04" + bytes(100), docx) == docx
    assert sniff(b"PK\x03\x04" + bytes(100), "image/png") == "application/zip"


def test_the_policy_takes_wildcards() -> None:
    policy = TypePolicy.parse("image/*, application/pdf")
    assert policy.allows("image/webp") and policy.allows("application/pdf; charset=x")
    with pytest.raises(UnsupportedFileType):
        policy.check("text/plain")


def test_links_are_bound_to_their_file_and_purpose() -> None:
    signer = LinkSigner("key", max_age_seconds=60)
    grant = LinkGrant("acme", "u1", "atc_1")
    token = signer.sign("upload", grant)
    assert signer.verify("upload", token, "atc_1") == grant
    for purpose, attachment_id in (("upload", "atc_2"), ("download", "atc_1")):
        with pytest.raises(InvalidLink):
            signer.verify(purpose, token, attachment_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidLink):
        LinkSigner("other key", 60).verify("upload", token, "atc_1")


def test_file_names_lose_paths_and_control_characters() -> None:
    assert clean_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("a\x00b\nc.txt") == "abc.txt"
    assert clean_name("///") == "file"
