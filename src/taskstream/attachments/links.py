"""Short-lived download links: an HMAC token naming one attachment and an expiry.

The key is derived from the JWT secret (HMAC with a label), so no new secret needs managing and
a token is useless for anything else. Tokens are url-safe base64 of
``attachment id (16) | expiry (8, big-endian seconds) | tag (16)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from typing import Final

_LABEL: Final = b"taskstream attachment download links v1"
_TAG_BYTES: Final = 16


class LinkSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_TAG_BYTES]

    def sign(self, attachment_id: uuid.UUID, expires_at: int) -> str:
        body = attachment_id.bytes + expires_at.to_bytes(8, "big")
        return base64.urlsafe_b64encode(body + self._tag(body)).decode().rstrip("=")

    def verify(self, token: str, now: float | None = None) -> uuid.UUID | None:
        """The attachment id of a genuine, unexpired token; None for anything else."""
        if len(token) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 24 + _TAG_BYTES:
            return None
        body, tag = raw[:24], raw[24:]
        if not hmac.compare_digest(tag, self._tag(body)):
            return None
        if int.from_bytes(body[16:24], "big") < (now if now is not None else time.time()):
            return None
        return uuid.UUID(bytes=body[:16])
