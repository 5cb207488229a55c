"""The one Kafka contract of attachments: ``attachment.uploaded``, keyed by attachment id.

It names the attachment only; the row in PostgreSQL holds everything else, so the command is
idempotent by construction (processing reads the row's state and resumes from it).
"""

from __future__ import annotations

import uuid
from typing import Final

import msgspec

from taskstream.messages import WireStruct

UPLOADED: Final = "attachment.uploaded"
VERSION: Final = 1


class AttachmentUploaded(WireStruct):
    type: str
    version: int
    attachment_id: uuid.UUID
    project_id: uuid.UUID


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AttachmentUploaded)


def encode_uploaded(attachment_id: uuid.UUID, project_id: uuid.UUID) -> bytes:
    return _encoder.encode(
        AttachmentUploaded(
            type=UPLOADED, version=VERSION, attachment_id=attachment_id, project_id=project_id
        )
    )


def decode_uploaded(raw: bytes) -> AttachmentUploaded:
    """Raises ``msgspec.DecodeError``/``ValidationError`` or ValueError for a foreign message."""
    command = _decoder.decode(raw)
    if (command.type, command.version) != (UPLOADED, VERSION):
        raise ValueError(f"unknown attachment command {command.type!r} v{command.version}")
    return command
