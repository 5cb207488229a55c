"""The content type of the bytes themselves (magic numbers), and what a download is served as.

Choice: a declared type that the content contradicts is not refused; the attachment is stored
and served as ``application/octet-stream`` (the declared and sniffed types are both kept on the
row). A client that mislabels a file loses nothing, and nothing is ever served under a type its
bytes do not have. Types a browser would run (HTML, SVG, XML) are served as ``text/plain``, and
every download carries ``X-Content-Type-Options: nosniff`` and ``Content-Disposition``.
"""

from __future__ import annotations

from typing import Final

OCTET_STREAM: Final = "application/octet-stream"
SNIFF_BYTES: Final = 4096

_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),
)
# Zip containers: a declared type of one of these is consistent with sniffed application/zip.
_ZIP_FAMILY: Final = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/epub+zip",
        "application/java-archive",
        "application/x-zip-compressed",
    }
)
_TEXT_FAMILY: Final = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml"}
)
# Served as text/plain: a browser would render or run them.
_ACTIVE: Final = frozenset(
    {"text/html", "image/svg+xml", "application/xml", "text/xml", "application/xhtml+xml"}
)
_GENERIC: Final = frozenset({"", OCTET_STREAM, "binary/octet-stream"})


def sniff(head: bytes) -> str | None:
    """The type the first bytes show, ``text/plain`` for NUL-free UTF-8, None if unknown."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head and b"\x00" not in head:
        try:
            head.decode()
        except UnicodeDecodeError as error:
            # a multi-byte character cut at the end of the sample is still text
            if error.start < len(head) - 3:
                return None
        return "text/plain"
    return None


def media_type(declared: str | None) -> str:
    """The bare, lower-case media type of a Content-Type value."""
    return (declared or "").split(";", 1)[0].strip().lower()


def consistent(declared: str, sniffed: str | None) -> bool:
    """Whether the bytes can be what the uploader said (unknown bytes contradict nothing)."""
    if declared in _GENERIC or sniffed is None or declared == sniffed:
        return True
    if sniffed == "application/zip":
        return declared in _ZIP_FAMILY
    if sniffed == "text/plain":
        return declared.startswith("text/") or declared in _TEXT_FAMILY or declared in _ACTIVE
    return False


def served_type(declared: str | None, sniffed: str | None) -> str:
    """What a download is served as (see the module docstring for the rule)."""
    bare = media_type(declared)
    if not consistent(bare, sniffed):
        return OCTET_STREAM
    chosen = (
        bare
        if bare not in _GENERIC and sniffed in (None, "application/zip", "text/plain")
        else sniffed
    )
    if chosen is None or (sniffed is None and chosen == bare):
        # unknown bytes: never served as a type only the uploader vouches for
        return OCTET_STREAM
    if chosen in _ACTIVE:
        return "text/plain"
    return chosen
