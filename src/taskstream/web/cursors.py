"""The opaque cursor of a list in (timestamp, id) order: the last item's position, base64 JSON.
One format, so a crafted cursor is refused the same way (422 on ``cursor``) on every such list
and never reaches SQL with an unstorable datetime."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import msgspec

from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import storable_datetime_error

Position = tuple[datetime, uuid.UUID]


def encode_position(at: datetime, item_id: uuid.UUID) -> str:
    raw = msgspec.json.encode([at, item_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str | None) -> Position | None:
    """The position a cursor names (None: the first page); 422 for anything
    ``encode_position`` could not have produced."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = msgspec.json.decode(raw, type=tuple[datetime, uuid.UUID])
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")]) from exc
    if storable_datetime_error(at) is not None:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")])
    return at, item_id
