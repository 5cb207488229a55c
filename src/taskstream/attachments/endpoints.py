"""Attachment routes: streamed and resumable uploads, reads, downloads, links, deletion.

Uploads stream the request body straight into the object store (``opt={"raw_body": True}``
lets any content type through the request guard; ``request_max_body_size=None`` turns off the
app-wide 1 MB JSON limit on these routes only, because ``attachments.max_upload_bytes`` and
``chunk_max_bytes`` are enforced while streaming, with a 413 as soon as they are crossed).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, head, patch, post
from litestar.datastructures import State
from litestar.exceptions import InternalServerException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_206_PARTIAL_CONTENT,
)

from taskstream.attachments.errors import ClientGoneError
from taskstream.attachments.names import name_from_disposition
from taskstream.attachments.schemas import (
    AttachmentAccepted,
    AttachmentOut,
    AttachmentPage,
    CreateUploadRequest,
    DownloadLink,
    UploadSessionOut,
)
from taskstream.attachments.service import AttachmentService, Download
from taskstream.attachments.uploads import UploadService
from taskstream.enums import AttachmentState
from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.problems import problem_responses
from taskstream.web.dependencies import caller, trace_id_of
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

RAW_BODY = {"raw_body": True}
UPLOAD_PROBLEMS = problem_responses(403, 404, 409, 413, 422)
READ_PROBLEMS = problem_responses(404)
DOWNLOAD_PROBLEMS = problem_responses(404, 409, 416)
# The success responses as the document shows them: a download is the stored file in its own
# type (the Stream sets it per response; a route-level media_type would override it), so "any
# type"; HEAD has headers and no body. (Litestar puts these over its generated 200.)
FILE_RESPONSES = {
    200: ResponseSpec(
        bytes, media_type="*/*", description="The file, in its own type", generate_examples=False
    ),
    206: ResponseSpec(
        bytes, media_type="*/*", description="The requested range", generate_examples=False
    ),
}
THUMBNAIL_RESPONSE = {
    200: ResponseSpec(
        bytes, media_type="image/jpeg", description="The thumbnail", generate_examples=False
    )
}
OFFSET_RESPONSE = {
    200: ResponseSpec(None, description="No body: `Upload-Offset` and `Upload-Length` headers")
}
NameQuery = Annotated[
    str | None,
    QueryParameter(
        description="File name (or send Content-Disposition: attachment; filename*=...)",
        max_length=255,
    ),
]


def _uploads(state: State) -> UploadService:
    return state.attachment_uploads


def _attachments(state: State) -> AttachmentService:
    return state.attachments


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that hangs up ends it with ClientGoneError."""
    try:
        async for chunk in request.stream():
            yield chunk
    except InternalServerException as error:
        raise ClientGoneError("The connection closed before the body ended") from error


def _int_header(request: Request[Any, Any, Any], name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailedError([FieldError(name, "must be a non-negative integer")])
    return int(raw)


def _session_headers(upload: UploadSessionOut) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
        "Location": f"/attachments/uploads/{upload.id}",
    }
    if upload.attachment_id is not None:
        headers["Attachment-Location"] = f"/attachments/{upload.attachment_id}"
    return headers


def _stream(download: Download) -> Stream:
    headers = {
        "Content-Length": str(download.end - download.start),
        "Content-Disposition": download.disposition,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "ETag": download.etag,
    }
    if download.partial:
        headers["Content-Range"] = f"bytes {download.start}-{download.end - 1}/{download.size}"
    return Stream(
        download.chunks,
        media_type=download.content_type,
        status_code=HTTP_206_PARTIAL_CONTENT if download.partial else HTTP_200_OK,
        headers=headers,
    )


class TaskAttachmentController(Controller):
    path = "/tasks/{task_id:uuid}/attachments"
    tags = ["attachments"]

    @post(
        "/",
        operation_id="uploadAttachment",
        status_code=HTTP_202_ACCEPTED,
        responses=UPLOAD_PROBLEMS,
        request_max_body_size=None,
        opt=RAW_BODY,
    )
    async def upload(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        name: NameQuery = None,
    ) -> Response[AttachmentAccepted]:
        """Upload a file as the raw body (streamed); 202 once it is queued for processing."""
        accepted = await _uploads(request.app.state).upload(
            caller(request),
            task_id,
            raw_name=name or name_from_disposition(request.headers.get("content-disposition")),
            declared_type=request.headers.get("content-type"),
            content_length=_int_header(request, "content-length"),
            body=_body(request),
            trace_id=trace_id_of(request),
        )
        return Response(
            accepted, status_code=HTTP_202_ACCEPTED, headers={"Location": accepted.location}
        )

    @post(
        "/uploads",
        operation_id="createAttachmentUpload",
        status_code=HTTP_201_CREATED,
        responses=UPLOAD_PROBLEMS,
    )
    async def create_upload(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[CreateUploadRequest],
        request: Request[Any, Any, Any],
    ) -> Response[UploadSessionOut]:
        """Open a resumable upload (tus-like): then PATCH chunks to its Location."""
        upload = await _uploads(request.app.state).create_session(caller(request), task_id, data)
        return Response(upload, status_code=HTTP_201_CREATED, headers=_session_headers(upload))

    @get("/", operation_id="listTaskAttachments", responses=READ_PROBLEMS)
    async def list_attachments(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> AttachmentPage:
        """The task's attachments, every version of every name, oldest first."""
        state = request.app.state
        return await _attachments(state).list_for_task(
            caller(request), task_id, cursor, page_size(limit, state.settings.api)
        )


class AttachmentController(Controller):
    path = "/attachments"
    tags = ["attachments"]

    @patch(
        "/uploads/{upload_id:uuid}",
        operation_id="appendAttachmentUpload",
        responses=UPLOAD_PROBLEMS,
        request_max_body_size=None,
        opt=RAW_BODY,
    )
    async def append(
        self, *, upload_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> Response[UploadSessionOut]:
        """Append the body at `Upload-Offset`; 409 with the current offset if it differs."""
        upload = await _uploads(request.app.state).append(
            caller(request),
            upload_id,
            _int_header(request, "upload-offset"),
            _body(request),
            trace_id_of(request),
        )
        return Response(upload, headers=_session_headers(upload))

    @head(
        "/uploads/{upload_id:uuid}",
        operation_id="headAttachmentUpload",
        responses={**READ_PROBLEMS, **OFFSET_RESPONSE},
    )
    async def head_upload(
        self, *, upload_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> Response[None]:
        """How much of the upload arrived: `Upload-Offset` and `Upload-Length` headers."""
        upload = await _uploads(request.app.state).session_status(caller(request), upload_id)
        return Response(None, headers=_session_headers(upload))

    @get("/uploads/{upload_id:uuid}", operation_id="getAttachmentUpload", responses=READ_PROBLEMS)
    async def get_upload(
        self, *, upload_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> UploadSessionOut:
        """The upload session: offset, length, and the attachment once complete."""
        return await _uploads(request.app.state).session_status(caller(request), upload_id)

    @get("/{attachment_id:uuid}", operation_id="getAttachment", responses=READ_PROBLEMS)
    async def get_attachment(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> AttachmentOut:
        """The attachment's metadata, processing state and stage progress."""
        return await _attachments(request.app.state).get(caller(request), attachment_id)

    @get(
        "/{attachment_id:uuid}/content",
        operation_id="downloadAttachment",
        responses={**DOWNLOAD_PROBLEMS, **FILE_RESPONSES},
    )
    async def download(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> Stream:
        """The stored file, streamed; one `Range` of bytes gives 206 (416 past the end)."""
        return _stream(
            await _attachments(request.app.state).download(
                caller(request), attachment_id, request.headers.get("range")
            )
        )

    @get(
        "/{attachment_id:uuid}/thumbnail",
        operation_id="getAttachmentThumbnail",
        responses={**DOWNLOAD_PROBLEMS, **THUMBNAIL_RESPONSE},
    )
    async def thumbnail(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> Stream:
        """The JPEG thumbnail of a stored image (404 for other files)."""
        return _stream(
            await _attachments(request.app.state).thumbnail(caller(request), attachment_id)
        )

    @post(
        "/{attachment_id:uuid}/download-link",
        operation_id="createAttachmentDownloadLink",
        status_code=HTTP_201_CREATED,
        responses=DOWNLOAD_PROBLEMS,
    )
    async def create_link(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> DownloadLink:
        """A short-lived URL that downloads the file without a bearer token."""
        return await _attachments(request.app.state).create_link(caller(request), attachment_id)

    @delete(
        "/{attachment_id:uuid}",
        operation_id="deleteAttachment",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(403, 404),
    )
    async def delete_attachment(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> None:
        """Delete (uploader, maintainers, owners, admins); content goes with its last use."""
        await _attachments(request.app.state).delete(caller(request), attachment_id)


class AttachmentLinkController(Controller):
    path = "/attachment-links"
    tags = ["attachments"]

    @get(
        "/{token:str}",
        operation_id="downloadAttachmentByLink",
        responses={**DOWNLOAD_PROBLEMS, **FILE_RESPONSES},
        exclude_from_auth=True,
        security=[],
    )
    async def download(self, *, token: FromPath[str], request: Request[Any, Any, Any]) -> Stream:
        """Download through a signed link (no Authorization) until it expires."""
        return _stream(
            await _attachments(request.app.state).download_by_link(
                token, request.headers.get("range")
            )
        )


class AdminAttachmentController(Controller):
    path = "/admin/attachments"
    tags = ["attachments", "admin"]

    @get("/", operation_id="adminListAttachments", responses=problem_responses(403))
    async def list_all(
        self,
        *,
        request: Request[Any, Any, Any],
        project_id: Annotated[uuid.UUID | None, QueryParameter(name="projectId")] = None,
        attachment_state: Annotated[AttachmentState | None, QueryParameter(name="state")] = None,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> AttachmentPage:
        """Every project's attachments, filtered by project and state (admins only)."""
        state = request.app.state
        return await _attachments(state).list_all(
            caller(request),
            cursor,
            page_size(limit, state.settings.api),
            project_id,
            attachment_state,
        )

    @delete(
        "/{attachment_id:uuid}",
        operation_id="adminPurgeAttachment",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(403, 404),
    )
    async def purge(
        self, *, attachment_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> None:
        """Delete any attachment in any state (admins only)."""
        await _attachments(request.app.state).purge(caller(request), attachment_id)


CONTROLLERS = [
    TaskAttachmentController,
    AttachmentController,
    AttachmentLinkController,
    AdminAttachmentController,
]
