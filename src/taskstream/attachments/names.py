"""File names and content types: what is stored, what is shown, what a download says.

A name is kept as given for display (bounded, NUL-free) and reduced to a storage-safe form for
anything that touches a key or a file system: no path separators, no ``..``, no control or
format characters, no leading dots, bounded in bytes. ``Content-Disposition`` carries both an
ASCII fallback and the exact name in RFC 6266/8187 ``filename*``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import quote, unquote

MAX_NAME_CHARS: Final = 255
_STORAGE_BYTES: Final = 200
_UNSAFE: Final = re.compile(r"[\\/:*?\"<>|\x00-\x1f\x7f]")
_ASCII_FALLBACK: Final = re.compile(r"[^A-Za-z0-9._ ()+-]")


class BadNameError(ValueError):
    """The name cannot be kept even for display."""


def display_name(raw: str) -> str:
    """The name as the uploader gave it, refused only when it cannot be stored at all."""
    name = raw.strip()
    if not name:
        raise BadNameError("The file name is empty")
    if "\x00" in name:
        raise BadNameError("The file name must not contain the NUL character (U+0000)")
    if len(name) > MAX_NAME_CHARS:
        raise BadNameError(f"The file name is longer than {MAX_NAME_CHARS} characters")
    return name


def storage_name(name: str) -> str:
    """A form of ``name`` safe as the last segment of a key or a path (never empty)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        "_" if _UNSAFE.match(ch) or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
        for ch in unicodedata.normalize("NFC", base)
    )
    cleaned = cleaned.strip(" .") or "file"
    encoded = cleaned.encode()[:_STORAGE_BYTES]
    return encoded.decode(errors="ignore") or "file"


def content_disposition(name: str, *, inline: bool = False) -> str:
    """``attachment; filename="<ascii>"; filename*=UTF-8''<exact>`` for any name."""
    safe = storage_name(name)
    fallback = _ASCII_FALLBACK.sub("_", safe) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


_FILENAME_STAR: Final = re.compile(r"filename\*\s*=\s*([\w!#$&+.^`|~-]+)'[\w-]*'([^;\s]+)", re.I)
_FILENAME: Final = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.I)


def name_from_disposition(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` request header gives (``filename*`` first)."""
    if not header:
        return None
    if match := _FILENAME_STAR.search(header):
        charset, value = match.groups()
        try:
            return unquote(value, encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            return None
    if match := _FILENAME.search(header):
        quoted, bare = match.groups()
        return re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return None
