"""V4 signed GCS URLs: two-phase uploads PUT straight to the bucket and previews from it.

fake-gcs-server stores what a signed PUT sends but checks no signature, expiry, signed header
or `x-goog-content-length-range`: the tests verify every signature themselves (`verify_v4`) and
the service checks size and type of what arrived anyway (`test_settling.py`)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth
import httpx
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from google.api_core.exceptions import Forbidden
from google.auth import credentials as auth_credentials
from google.auth.exceptions import DefaultCredentialsError

from service.chatkit.attachments.gcs import CORS_HEADERS, GcsBlobs, apply_cors, cors_rule
from service.chatkit.attachments.links import LinkSigner
from service.chatkit.attachments.service import BUCKET_UPLOAD, UPLOAD_PATH, Attachments
from service.chatkit.attachments.signing import UrlSigner, resolve_signer, signer_for
from service.chatkit.attachments.types import TypePolicy
from service.request_context import RequestContext
from tests.chatkit.attachments.emulator import Emulator, start_emulator
from tests.chatkit.attachments.signed import (
    GCS_HOST,
    SERVICE_ACCOUNT,
    ServiceAccountKey,
    query,
    string_to_sign,
    verify_v4,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
CONTEXT = RequestContext("u1", "acme")
LINK_SECONDS = 900
IAM = "https://iamcredentials.googleapis.com/"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    yield from start_emulator()


@pytest.fixture(scope="module")
def key() -> ServiceAccountKey:
    return ServiceAccountKey.generate()


@pytest.fixture
def key_file(
    key: ServiceAccountKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> Path:
    """Application Default Credentials: the generated key; the storage client: the emulator."""
    path = key.write(tmp_path / "key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    return path


def attachments_on(blobs: GcsBlobs, max_bytes: int = 1_000_000) -> Attachments:
    return Attachments(
        blobs=blobs,
        policy=TypePolicy.parse("image/*,application/pdf"),
        max_bytes=max_bytes,
        links=LinkSigner("key", LINK_SECONDS),
        public_url="https://chat.example.com",
    )


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as browser:
        return await browser.put(url, content=data, headers={**headers, "Host": GCS_HOST})


# --- uploads ---------------------------------------------------------------------------------


async def test_a_key_signs_a_put_straight_to_the_bucket_under_the_tenant_prefix(
    key_file: Path, key: ServiceAccountKey, emulator: Emulator
) -> None:
    bucket = emulator.new_bucket()
    attachments = attachments_on(GcsBlobs(f"gs://{bucket}/uploads", signed_urls="auto"))

    record = await attachments.new_upload(CONTEXT, "atc_1", "cat.png", "image/png")

    descriptor = record.upload_descriptor
    assert descriptor is not None
    assert descriptor.method == "PUT"
    assert descriptor.headers == {
        "Content-Type": "image/png",
        "x-goog-content-length-range": "0,1000000",
        "x-goog-if-generation-match": "0",
    }
    url = str(descriptor.url)
    assert url.startswith(f"{emulator.url}/{bucket}/uploads/acme/atc_1?")
    params = query(url)
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"].startswith(f"{SERVICE_ACCOUNT}/")
    assert params["X-Goog-Expires"] == str(LINK_SECONDS)
    verify_v4(url, "PUT", descriptor.headers, key)  # exactly these headers, nothing else
    assert record.metadata == {BUCKET_UPLOAD: True}
    assert "metadata" not in record.model_dump(context={"exclude_metadata": True})

    response = await put(url, PNG, descriptor.headers)
    assert response.status_code == 200, response.text
    assert emulator.object_names(bucket) == ["uploads/acme/atc_1"]
    assert emulator.read(bucket, "uploads/acme/atc_1").download_as_bytes() == PNG


async def test_a_tampered_header_breaks_the_signature(
    key_file: Path, key: ServiceAccountKey, emulator: Emulator
) -> None:
    attachments = attachments_on(
        GcsBlobs(f"gs://{emulator.new_bucket()}/u", signed_urls="auto"), max_bytes=100
    )
    record = await attachments.new_upload(CONTEXT, "atc_2", "doc.pdf", "application/pdf")
    assert record.upload_descriptor is not None
    headers = dict(record.upload_descriptor.headers)
    headers["x-goog-content-length-range"] = "0,999999999"  # a bigger file than allowed
    with pytest.raises(InvalidSignature):
        verify_v4(str(record.upload_descriptor.url), "PUT", headers, key)


async def test_without_credentials_that_sign_two_phase_uploads_use_this_service(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)

    def no_credentials(**_: Any) -> Any:
        raise DefaultCredentialsError("none here")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    for mode in ("auto", "off"):
        attachments = attachments_on(GcsBlobs(f"gs://{emulator.new_bucket()}/u", signed_urls=mode))  # type: ignore[arg-type]
        record = await attachments.new_upload(CONTEXT, "atc_3", "cat.png", "image/png")
        assert record.upload_descriptor is not None
        assert str(record.upload_descriptor.url).startswith(
            f"https://chat.example.com{UPLOAD_PATH}/atc_3?token="
        )
        assert record.upload_descriptor.headers == {}
        assert record.metadata is None
        assert str(getattr(record, "preview_url", "")).startswith("https://chat.example.com/")
    assert resolve_signer("off").reason == "ATTACHMENTS_SIGNED_URLS=off"
    assert "DefaultCredentialsError" in resolve_signer("auto").reason


def test_user_credentials_cannot_sign() -> None:
    class UserCredentials(auth_credentials.Credentials):
        def refresh(self, request: Any) -> None:
            raise AssertionError("not needed")

    resolved = signer_for(UserCredentials())
    assert resolved.signer is None
    assert "UserCredentials" in resolved.reason


# --- previews --------------------------------------------------------------------------------


async def test_previews_are_signed_gets_that_expire_and_are_reused_while_fresh(
    key_file: Path, key: ServiceAccountKey, emulator: Emulator
) -> None:
    bucket = emulator.new_bucket()
    attachments = attachments_on(GcsBlobs(f"gs://{bucket}/uploads", signed_urls="auto"))
    record = await attachments.new_upload(CONTEXT, "atc_4", "cat.png", "image/png")
    assert record.upload_descriptor is not None
    await put(str(record.upload_descriptor.url), PNG, record.upload_descriptor.headers)

    preview = await attachments.preview_url(CONTEXT, "atc_4", "image/png")
    params = query(preview)
    assert params["X-Goog-Expires"] == str(LINK_SECONDS)
    assert params["response-content-type"] == "image/png"
    assert params["response-content-disposition"] == "inline"
    verify_v4(preview, "GET", {}, key)
    assert await attachments.preview_url(CONTEXT, "atc_4", "image/png") == preview  # cached

    async with httpx.AsyncClient() as browser:  # an <img> tag: no auth headers
        got = await browser.get(preview, headers={"Host": GCS_HOST})
    assert got.status_code == 200
    assert got.content == PNG


# --- IAM signBlob (Workload Identity: no private key) ----------------------------------------


class ComputeCredentials(auth_credentials.Credentials):
    """Like GKE Workload Identity's credentials: a token from the metadata server, no key."""

    def __init__(self) -> None:
        super().__init__()
        self.service_account_email = "default"
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.service_account_email = SERVICE_ACCOUNT
        self.token = f"access-token-{self.refreshes}"


@pytest.fixture
def iam(key: ServiceAccountKey, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The IAM Credentials API's signBlob, signing with the test key. google-cloud-storage
    calls it through `requests` (respx only intercepts httpx), so the session is replaced."""
    calls: list[dict[str, Any]] = []
    real = requests.Session.request

    def request(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        if not url.startswith(IAM):
            return real(self, method, url, **kwargs)  # the emulator
        payload = base64.b64decode(json.loads(kwargs["data"])["payload"])
        calls.append(
            {
                "method": method,
                "url": url,
                "authorization": kwargs["headers"]["Authorization"],
                "payload": payload,
                "thread": threading.current_thread(),
            }
        )
        response = requests.Response()
        response.status_code = 200
        signed = base64.b64encode(key.sign(payload)).decode()
        response._content = json.dumps({"keyId": "k", "signedBlob": signed}).encode()
        return response

    monkeypatch.setattr(requests.Session, "request", request)
    return calls


async def test_workload_identity_signs_through_iam_sign_blob_off_the_event_loop(
    key: ServiceAccountKey,
    iam: list[dict[str, Any]],
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    credentials = ComputeCredentials()
    monkeypatch.setattr(google.auth, "default", lambda **_: (credentials, "test-project"))
    bucket = emulator.new_bucket()
    attachments = attachments_on(GcsBlobs(f"gs://{bucket}/uploads", signed_urls="auto"))

    record = await attachments.new_upload(CONTEXT, "atc_5", "scan.pdf", "application/pdf")
    preview = await attachments.preview_url(CONTEXT, "atc_5", "image/png")

    assert credentials.refreshes == 1  # at resolution; the token is still valid afterwards
    assert [call["url"] for call in iam] == [
        f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}"
        ":signBlob?alt=json"
    ] * 2
    assert {call["authorization"] for call in iam} == {"Bearer access-token-1"}
    assert threading.main_thread() not in {call["thread"] for call in iam}
    assert record.upload_descriptor is not None
    url, headers = str(record.upload_descriptor.url), record.upload_descriptor.headers
    assert iam[0]["payload"] == string_to_sign(url, "PUT", headers)
    verify_v4(url, "PUT", headers, key)
    verify_v4(preview, "GET", {}, key)
    assert (await put(url, PDF_BYTES, headers)).status_code == 200
    assert emulator.object_names(bucket) == ["uploads/acme/atc_5"]


PDF_BYTES = b"%PDF-1.4\n" + b"x" * 100 + b"\n%%EOF\n"


async def test_a_failing_sign_blob_falls_back_to_this_services_links(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    credentials = ComputeCredentials()
    monkeypatch.setattr(google.auth, "default", lambda **_: (credentials, "test-project"))

    real = requests.Session.request

    refusals: list[str] = []

    def refused(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        if not url.startswith(IAM):
            return real(self, method, url, **kwargs)
        refusals.append(url)
        response = requests.Response()
        response.status_code = 403
        response._content = b'{"error": "iam.serviceAccounts.signBlob denied"}'
        return response

    monkeypatch.setattr(requests.Session, "request", refused)
    attachments = attachments_on(GcsBlobs(f"gs://{emulator.new_bucket()}/u", signed_urls="auto"))
    with caplog.at_level(logging.WARNING):
        record = await attachments.new_upload(CONTEXT, "atc_6", "cat.png", "image/png")
    assert record.upload_descriptor is not None
    assert str(record.upload_descriptor.url).startswith("https://chat.example.com/")
    assert "could not sign a GCS URL" in caplog.text
    assert "access-token" not in caplog.text
    # A while without asking IAM again: previews come from this service meanwhile.
    preview = await attachments.preview_url(CONTEXT, "atc_6", "image/png")
    assert preview.startswith("https://chat.example.com/chatkit/api/attachments/atc_6/content?")
    assert len(refusals) == 1  # the upload URL; its preview and this one did not ask again


def test_the_signer_refreshes_an_expired_token_once_per_expiry() -> None:
    credentials = ComputeCredentials()
    signer = UrlSigner(credentials, SERVICE_ACCOUNT)

    class Blob:
        def generate_signed_url(self, **kwargs: Any) -> str:
            return f"signed with {kwargs['access_token']} as {kwargs['service_account_email']}"

    assert signer.sign(Blob()) == f"signed with access-token-1 as {SERVICE_ACCOUNT}"  # type: ignore[arg-type]
    assert signer.sign(Blob()) == f"signed with access-token-1 as {SERVICE_ACCOUNT}"  # type: ignore[arg-type]
    credentials.token = None  # expired
    assert signer.sign(Blob()) == f"signed with access-token-2 as {SERVICE_ACCOUNT}"  # type: ignore[arg-type]


# --- bucket CORS -----------------------------------------------------------------------------


class FakeBucket:
    def __init__(self, cors: list[dict[str, Any]], *, forbidden: bool = False) -> None:
        self.cors = cors
        self.forbidden = forbidden
        self.patches = 0

    def reload(self, **_: Any) -> None:
        if self.forbidden:
            raise Forbidden("storage.buckets.get denied")

    def patch(self, **_: Any) -> None:
        self.patches += 1


def test_the_cors_rule_is_added_beside_other_rules_once() -> None:
    other = {"origin": ["https://other.example.com"], "method": ["GET"]}
    stale = {"origin": ["https://app.example.com"], "method": ["GET"]}
    bucket = FakeBucket([other, stale])
    assert apply_cors(bucket, ["https://app.example.com"]) is True  # type: ignore[arg-type]
    rule = cors_rule(["https://app.example.com"])
    assert bucket.cors == [other, rule]
    assert rule["method"] == ["GET", "HEAD", "PUT"]
    assert set(CORS_HEADERS) == {
        "Content-Type",
        "x-goog-content-length-range",
        "x-goog-if-generation-match",
    }
    assert apply_cors(bucket, ["https://app.example.com"]) is False  # type: ignore[arg-type]
    assert bucket.patches == 1


async def test_the_cors_rule_reaches_the_emulator_bucket_at_start_up(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    bucket = emulator.new_bucket()
    blobs = GcsBlobs(f"gs://{bucket}/u", cors_origins=["https://app.example.com"])
    with caplog.at_level(logging.INFO):
        blobs.start()
        await asyncio.gather(*list(blobs._tasks))
    assert f"CORS rule of gs://{bucket} for https://app.example.com: set" in caplog.text
    await blobs.close()


async def test_a_bucket_that_refuses_cors_changes_is_a_warning_not_a_failed_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blobs = GcsBlobs("gs://locked/u", cors_origins=["https://app.example.com"])
    monkeypatch.setattr(blobs, "_bucket", lambda: FakeBucket([], forbidden=True))
    with caplog.at_level(logging.INFO):
        blobs.start()
        await asyncio.gather(*list(blobs._tasks))
    assert "could not set the CORS rule of gs://locked" in caplog.text
    assert "storage.buckets.get/update" in caplog.text
