"""Request and response bodies of the attachment routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from taskstream.enums import AttachmentState
from taskstream.fields import NO_NUL, ApiStruct, RequestStruct

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


class AttachmentAccepted(ApiStruct):
    """The upload is staged and queued for processing; follow it at ``location``."""

    id: uuid.UUID
    state: AttachmentState
    location: str


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


class AttachmentPage(ApiStruct):
    items: list[AttachmentOut]
    next_cursor: str | None = None


class CreateUploadRequest(RequestStruct):
    name: FileName
    length: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    content_type: MediaType | None = None


class UploadSessionOut(ApiStruct):
    id: uuid.UUID
    task_id: uuid.UUID
    name: str
    offset: int
    length: int
    expires_at: datetime
    completed: bool
    attachment_id: uuid.UUID | None = None


class DownloadLink(ApiStruct):
    url: str
    expires_at: datetime
