"""Moving a clean upload from staging to its final object, compressed where it pays.

- Images Pillow can read (PNG, JPEG, WebP, BMP, TIFF; at most ``IMAGE_MAX_BYTES``) are
  re-encoded in their own format (BMP and TIFF as PNG), shrunk to fit ``image_max_px`` on the
  longer side, with a JPEG thumbnail of ``thumbnail_px``. The re-encoding is kept only when it
  is smaller or the image had to shrink; otherwise the original bytes are stored (the thumbnail
  is kept either way). GIFs (animation) and anything Pillow refuses are stored as they are.
- Text-like types (text/*, JSON, XML, CSV, YAML, SVG) are gzipped while streaming, and kept
  gzipped only when that saves at least ``GZIP_MIN_SAVING`` (docs/attachments.md has the
  measurements: text 47-72 %, JSON 93 %; PDF, Office files, archives and media are
  already compressed and are not tried).
- Everything else is copied as it is.

Every output is a deterministic function of the input (gzip header without a timestamp,
Pillow's encoders), so a stage redone after a crash writes the same bytes.
"""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Final

from PIL import Image, UnidentifiedImageError

from taskstream.attachments.storage import ObjectStore
from taskstream.settings import AttachmentSettings

IMAGE_MAX_BYTES: Final = 64 * 1024 * 1024
GZIP_MIN_SAVING: Final = 0.10
# Pillow refuses (DecompressionBombError) images with more pixels than this.
Image.MAX_IMAGE_PIXELS = 120_000_000

_IMAGE_FORMATS: Final = {
    "image/png": ("PNG", "image/png"),
    "image/jpeg": ("JPEG", "image/jpeg"),
    "image/webp": ("WEBP", "image/webp"),
    "image/bmp": ("PNG", "image/png"),
    "image/tiff": ("PNG", "image/png"),
}
_TEXT_LIKE: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "image/svg+xml",
        "application/javascript",
    }
)


@dataclass(frozen=True, slots=True)
class StoredObject:
    stored_size: int
    compression: str  # none | gzip | image
    content_type: str
    thumbnail_key: str | None


def gzip_pays(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type in _TEXT_LIKE


async def _gzip(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
    async for chunk in chunks:
        out = deflater.compress(chunk)
        if out:
            yield out
    yield deflater.flush()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def reencode_image(
    data: bytes, content_type: str, max_px: int, thumb_px: int
) -> tuple[bytes, str, bytes] | None:
    """(re-encoded image, its type, JPEG thumbnail), or None when Pillow cannot read it."""
    target = _IMAGE_FORMATS.get(content_type)
    if target is None:
        return None
    fmt, out_type = target
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            shrunk = max(image.size) > max_px
            work = image.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    if shrunk:
        work.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    if fmt == "JPEG" and work.mode not in ("RGB", "L"):
        work = work.convert("RGB")
    out = io.BytesIO()
    options: dict[str, int | bool] = {}
    if fmt == "JPEG":
        options = {"quality": 85, "optimize": True}
    elif fmt == "PNG":
        options = {"optimize": True}
    work.save(out, fmt, **options)
    thumb = work.copy()
    thumb.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
    if thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    encoded = out.getvalue()
    if not shrunk and len(encoded) >= len(data) and out_type == content_type:
        encoded = data  # re-encoding did not pay: keep the uploaded bytes
    return encoded, out_type, thumb_out.getvalue()


async def store_final(
    store: ObjectStore,
    source_key: str,
    final_key: str,
    *,
    content_type: str,
    size: int,
    settings: AttachmentSettings,
) -> StoredObject:
    """Write ``source_key``'s content to ``final_key`` (and a thumbnail beside it)."""
    if content_type in _IMAGE_FORMATS and size <= IMAGE_MAX_BYTES:
        data = b"".join([chunk async for chunk in store.get(source_key)])
        result = await asyncio.to_thread(
            reencode_image, data, content_type, settings.image_max_px, settings.thumbnail_px
        )
        if result is not None:
            encoded, out_type, thumb = result
            thumb_key = f"{final_key}.thumb"
            await store.put(thumb_key, _once(thumb))
            stored = await store.put(final_key, _once(encoded))
            compression = "none" if encoded is data else "image"
            return StoredObject(stored, compression, out_type, thumb_key)
    if gzip_pays(content_type):
        stored = await store.put(final_key, _gzip(store.get(source_key)))
        if stored <= size * (1 - GZIP_MIN_SAVING):
            return StoredObject(stored, "gzip", content_type, None)
    stored = await store.put(final_key, store.get(source_key))
    return StoredObject(stored, "none", content_type, None)
