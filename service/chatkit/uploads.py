"""HTTP routes for attachment bytes: the direct upload (`POST /chatkit/api/upload`), the
two-phase upload URL (`PUT`/`POST /chatkit/api/upload/<id>?token=`) and downloads/previews
(`GET /chatkit/api/attachments/<id>/content`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from chatkit.types import Attachment
from quart import Blueprint, Request, Response, request
from quart.typing import ResponseReturnValue

from service.auth import Authenticator
from service.chatkit.attachments.errors import BadUpload, UploadTooLarge
from service.chatkit.attachments.multipart import MultipartFile
from service.chatkit.attachments.service import CONTENT_PATH, UPLOAD_PATH, Attachments
from service.chatkit.attachments.store import FileAttachmentStore
from service.chatkit.errors import InvalidRequest
from service.chatkit.failures import FailureTable, error_response, log_failure
from service.chatkit.limits import AbuseLimits
from service.chatkit.request_body import discard_small_body
from service.chatkit.store.base import ChatStore
from service.observability.metrics import Metrics
from service.request_context import RequestContext

logger = logging.getLogger(__name__)

MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Room for the multipart boundaries and part headers around the file itself."""


def body_limited_request(max_upload_bytes: int) -> type[Request]:
    """Quart's request class with the upload routes' body limit (the size of a file plus its
    form) instead of the app-wide `MAX_CONTENT_LENGTH` of JSON requests."""

    class LimitedRequest(Request):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            if path.startswith(UPLOAD_PATH):
                kwargs["max_content_length"] = max_upload_bytes + MULTIPART_OVERHEAD_BYTES
            super().__init__(method, scheme, path, *args, **kwargs)

    return LimitedRequest


def uploads_blueprint(
    attachments: Attachments,
    attachment_store: FileAttachmentStore,
    store: ChatStore,
    authenticate: Authenticator,
    failures: FailureTable,
    metrics: Metrics,
    limits: AbuseLimits,
) -> Blueprint:
    blueprint = Blueprint("uploads", __name__)

    backend = attachments.backend
    count = metrics.upload_counter(backend)

    def counted(outcome: str, started: float, size: int | None = None) -> None:
        count(outcome, size)
        metrics.upload_duration.labels(backend, outcome).observe(time.perf_counter() - started)

    def failed(exc: Exception, started: float | None) -> Response:
        failure = failures.classify(exc)
        log_failure(failure, exc)
        if started is not None:
            counted(failure.error_type, started)
        return error_response(failure)

    async def store_bytes(
        started: float,
        context: RequestContext,
        attachment_id: str,
        name: str,
        declared_type: str,
        chunks: AsyncIterator[bytes],
        *,
        thread_id: str | None = None,
    ) -> Attachment:
        stored = await attachments.ingest(context, attachment_id, name, declared_type, chunks)
        record = await attachments.record(
            context, attachment_id, name, stored.content_type, thread_id=thread_id
        )
        try:
            await store.save_attachment(record, context)
        except BaseException:
            await attachments.delete_bytes(context.tenant_id, attachment_id)
            raise
        counted("ok", started, stored.size)
        return record

    def too_long_declared() -> None:
        length = request.content_length
        if length is not None and length > attachments.max_bytes + MULTIPART_OVERHEAD_BYTES:
            raise UploadTooLarge(f"files may be at most {attachments.max_bytes} bytes")

    @blueprint.post(UPLOAD_PATH)
    async def direct_upload() -> ResponseReturnValue:
        started = time.perf_counter()
        try:
            context = await authenticate(request)
            await limits.admit_request(context)
            too_long_declared()
            form = MultipartFile(request.body, request.headers.get("Content-Type"))
            await form.open()
            attachment_id = attachment_store.generate_attachment_id(form.content_type, context)
            record = await store_bytes(
                started, context, attachment_id, form.filename, form.content_type, form.chunks()
            )
        except Exception as exc:
            await discard_small_body()
            return failed(exc, started)
        return attachment_response(record)

    @blueprint.route(f"{UPLOAD_PATH}/<attachment_id>", methods=["PUT", "POST"])
    async def two_phase_upload(attachment_id: str) -> ResponseReturnValue:
        started = time.perf_counter()
        try:
            grant = attachments.links.verify("upload", request.args.get("token", ""), attachment_id)
            context = RequestContext(grant.user_id, grant.tenant_id, "user", None)
            await limits.admit_request(context)
            existing = await store.load_attachment(attachment_id, context)
            if existing.upload_descriptor is None:
                raise InvalidRequest("this file has already been uploaded")
            too_long_declared()
            if request.method == "POST":
                form = MultipartFile(request.body, request.headers.get("Content-Type"))
                await form.open()
                chunks = form.chunks()
            else:
                chunks = _raw(request.body)
            record = await store_bytes(
                started,
                context,
                attachment_id,
                existing.name,
                existing.mime_type,
                chunks,
                thread_id=existing.thread_id,
            )
        except Exception as exc:
            await discard_small_body()
            return failed(exc, started)
        return attachment_response(record)

    @blueprint.get(CONTENT_PATH.replace("{attachment_id}", "<attachment_id>"))
    async def content(attachment_id: str) -> ResponseReturnValue:
        try:
            token = request.args.get("token")
            if token:
                grant = attachments.links.verify("download", token, attachment_id)
                context = RequestContext(grant.user_id, grant.tenant_id, "user", None)
            else:
                context = await authenticate(request)
            record = await store.load_attachment(attachment_id, context)
            key = attachments.key(context.tenant_id, attachment_id)
            info = await attachments.blobs.info(key) if record.upload_descriptor is None else None
            if info is None:
                raise FileMissing(f"Attachment {attachment_id} has no content yet")
        except Exception as exc:
            return failed(exc, None)
        return Response(
            attachments.blobs.read(key),
            content_type=record.mime_type or info.content_type,
            headers={
                "Content-Length": str(info.size),
                "Content-Disposition": _disposition(record),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "private, max-age=3600",
            },
        )

    return blueprint


class FileMissing(BadUpload, status=404, code="not_found"):
    """The record exists but its bytes never arrived."""


async def _raw(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in body:
        yield chunk


def _disposition(record: Attachment) -> str:
    kind = "inline" if record.type == "image" else "attachment"
    return f"{kind}; filename*=UTF-8''{quote(record.name)}"


def attachment_response(record: Attachment) -> Response:
    return Response(
        record.model_dump_json(context={"exclude_metadata": True}),
        content_type="application/json",
    )
