"""Errors particular to attachments (all become problem+json through ``taskstream.errors``)."""

from __future__ import annotations

from taskstream.errors import ConflictError, DomainError


class PayloadTooLargeError(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class QuotaExceededError(PayloadTooLargeError):
    slug, title = "attachment-quota-exceeded", "Project attachment quota exceeded"


class RangeNotSatisfiableError(DomainError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"The attachment has {size} bytes")
        self.headers = {"Content-Range": f"bytes */{size}"}


class OffsetConflictError(ConflictError):
    """A chunk sent at another offset than the session's: the current one is in the header."""

    slug, title = "upload-offset-conflict", "Wrong upload offset"

    def __init__(self, offset: int, length: int) -> None:
        super().__init__(f"The upload is at offset {offset} of {length}")
        self.headers = {"Upload-Offset": str(offset), "Upload-Length": str(length)}


class NotDownloadableError(ConflictError):
    slug, title = "attachment-not-downloadable", "Attachment not downloadable"


class ClientGoneError(DomainError):
    """The client closed the connection before the body ended (nobody reads the answer)."""

    status, slug, title = 400, "client-disconnected", "Client disconnected"
