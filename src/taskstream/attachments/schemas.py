"""Request and response bodies of the attachment routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from taskstream.enums import AttachmentState
from taskstream.fields import NO_NUL, ApiStruct, RequestStruct, example

# Values shared by the OpenAPI examples below (wire form).
ATTACHMENT_ID = "0192f1e8-3c4d-7e5f-8a6b-7c8d9e0f1a2b"
TASK_ID = "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6"
PROJECT_ID = "0192f1e5-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
UPLOADER_ID = "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40"
UPLOAD_ID = "0192f1e8-4d5e-7f60-8172-8394a5b6c7d8"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

FileName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, pattern=NO_NUL, examples=["design.pdf"])
]
MediaType = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, pattern=NO_NUL, examples=["application/pdf"])
]
# stages in order, for a progress figure: scanning is stage 1 of 4 ...
STAGES = (
    AttachmentState.RECEIVED,
    AttachmentState.SCANNING,
    AttachmentState.DEDUPLICATING,
    AttachmentState.COMPRESSING,
    AttachmentState.STORED,
)


@example({"id": ATTACHMENT_ID, "state": "received", "location": f"/attachments/{ATTACHMENT_ID}"})
class AttachmentAccepted(ApiStruct):
    """The upload is staged and queued for processing; follow it at ``location``."""

    id: uuid.UUID
    state: AttachmentState
    location: str


ATTACHMENT_EXAMPLE = {
    "id": ATTACHMENT_ID,
    "taskId": TASK_ID,
    "projectId": PROJECT_ID,
    "uploaderId": UPLOADER_ID,
    "name": "design.pdf",
    "contentType": "application/pdf",
    "declaredType": "application/pdf",
    "sniffedType": "application/pdf",
    "size": 482113,
    "sha256": SHA256,
    "version": 2,
    "state": "stored",
    "stateReason": None,
    "progress": 4,
    "stages": 4,
    "createdAt": "2026-12-03T17:05:00Z",
    "updatedAt": "2026-12-03T17:05:02Z",
    "downloadable": True,
    "storedSize": 401877,
    "compression": "gzip",
    "hasThumbnail": False,
}


@example(ATTACHMENT_EXAMPLE)
class AttachmentOut(ApiStruct):
    id: uuid.UUID
    task_id: uuid.UUID
    project_id: uuid.UUID
    uploader_id: uuid.UUID
    name: str
    content_type: str
    declared_type: str | None
    sniffed_type: str | None
    size: int
    sha256: str
    version: int | None
    state: AttachmentState
    state_reason: str | None
    # stages passed of the five (received .. stored); final failures report the stage reached
    progress: int
    stages: int
    created_at: datetime
    updated_at: datetime
    downloadable: bool
    stored_size: int | None = None
    compression: str | None = None
    has_thumbnail: bool = False


@example({"items": [ATTACHMENT_EXAMPLE], "nextCursor": None})
class AttachmentPage(ApiStruct):
    items: list[AttachmentOut]
    next_cursor: str | None = None


@example({"name": "site-survey.mp4", "length": 73400320, "contentType": "video/mp4"})
class CreateUploadRequest(RequestStruct):
    name: FileName
    length: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    content_type: MediaType | None = None


@example(
    {
        "id": UPLOAD_ID,
        "taskId": TASK_ID,
        "name": "site-survey.mp4",
        "offset": 8388608,
        "length": 73400320,
        "expiresAt": "2026-12-04T17:05:00Z",
        "completed": False,
        "attachmentId": None,
    }
)
class UploadSessionOut(ApiStruct):
    id: uuid.UUID
    task_id: uuid.UUID
    name: str
    offset: int
    length: int
    expires_at: datetime
    completed: bool
    attachment_id: uuid.UUID | None = None


@example(
    {
        "url": "/attachment-links/AZLx6DxNfl-Ka3yNng8aKwAAAABrEaTAAAECAwQFBgcICQoLDA0ODw",
        "expiresAt": "2026-12-03T17:20:00Z",
    }
)
class DownloadLink(ApiStruct):
    url: str
    expires_at: datetime
