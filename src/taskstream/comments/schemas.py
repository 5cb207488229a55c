"""Request and response bodies of the comment routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from taskstream.enums import ReviewVerdict
from taskstream.fields import NOT_BLANK, ApiStruct, RequestStruct

BODY_MAX = 10_000

CommentBody = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=BODY_MAX,
        pattern=NOT_BLANK,
        description="Plain text, 1-10,000 characters with a visible one; mention a project "
        "member with the token `<@userId>`.",
        examples=["Looks good; <@0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e> can you check the docs?"],
    ),
]


class CreateCommentRequest(RequestStruct):
    body: CommentBody


class UpdateCommentRequest(RequestStruct):
    body: CommentBody


class CommentResponse(ApiStruct):
    """A comment, or a review (``kind: "review"``, with its ``verdict``; its ``body`` is the
    review's comment and may be null). Reviews are written by review commands and cannot be
    edited or deleted here."""

    id: uuid.UUID
    task_id: uuid.UUID
    kind: Literal["comment", "review"]
    author_id: uuid.UUID
    author_name: str | None
    body: str | None
    verdict: ReviewVerdict | None
    created_at: datetime
    edited_at: datetime | None


class CommentPage(ApiStruct):
    """One page, oldest first; pass ``nextCursor`` as ``cursor`` for the next (null: no more)."""

    items: list[CommentResponse]
    next_cursor: str | None
