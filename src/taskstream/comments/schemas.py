"""Request and response bodies of the comment routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from taskstream.enums import ReviewVerdict
from taskstream.fields import NOT_BLANK, ApiStruct, RequestStruct, example

# Values shared by the OpenAPI examples below (wire form).
COMMENT_ID = "0192f1e7-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
TASK_ID = "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6"
GRACE_ID = "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40"
MENTIONING_BODY = (
    "Draft is in the shared folder; <@0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e> can you review?"
)

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


@example({"body": MENTIONING_BODY})
class CreateCommentRequest(RequestStruct):
    body: CommentBody


@example({"body": "Draft is in the shared folder (v2)."})
class UpdateCommentRequest(RequestStruct):
    body: CommentBody


COMMENT_EXAMPLE = {
    "id": COMMENT_ID,
    "taskId": TASK_ID,
    "kind": "comment",
    "authorId": GRACE_ID,
    "authorName": "Grace Hopper",
    "body": MENTIONING_BODY,
    "verdict": None,
    "createdAt": "2026-12-03T17:05:00Z",
    "editedAt": None,
}


@example(COMMENT_EXAMPLE)
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


@example(
    {
        "items": [
            COMMENT_EXAMPLE,
            {
                "id": "0192f1e7-1a2b-7c3d-8e4f-5a6b7c8d9e10",
                "taskId": TASK_ID,
                "kind": "review",
                "authorId": "0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e",
                "authorName": "Ada Lovelace",
                "body": "Please add the pricing table.",
                "verdict": "request_changes",
                "createdAt": "2026-12-03T17:20:00Z",
                "editedAt": None,
            },
        ],
        "nextCursor": None,
    }
)
class CommentPage(ApiStruct):
    """One page, oldest first; pass ``nextCursor`` as ``cursor`` for the next (null: no more)."""

    items: list[CommentResponse]
    next_cursor: str | None
