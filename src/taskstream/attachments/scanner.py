"""A ClamAV client: clamd's INSTREAM command over TCP or a Unix socket.

The outcomes, and what the pipeline does with each:

- ``stream: OK``                      -> ``ScanVerdict(clean=True)``: the file may be served.
- ``stream: <signature> FOUND``       -> ``ScanVerdict(clean=False, signature=...)``: quarantine.
- clamd not listening, the connection reset or closed before a verdict, no answer within
  ``timeout_s`` of any one step, or ``ERROR`` answers about clamd's own state
  -> ``ScannerUnavailable``: the attachment stays in ``scanning`` and is retried later.
- ``INSTREAM size limit exceeded`` (the stream is longer than clamd's ``StreamMaxLength``) or
  any answer this client does not understand -> ``ScanRefused`` (a ``ScannerUnavailable``, so a
  caller that only knows the base class still never treats it as clean): retrying the same
  bytes cannot succeed, the pipeline marks the attachment ``failed``. The clamd that
  ``taskstream infra up`` starts has ``StreamMaxLength`` above ``max_upload_bytes``, so this
  means a misconfigured production clamd, and says so.

Nothing here ever turns an error into a clean verdict.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_SIZE_LIMIT = "INSTREAM size limit exceeded"


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    clean: bool
    signature: str | None


class ScannerUnavailable(Exception):
    """No verdict this time (clamd down, refusing, timing out): scan again later."""


class ScanRefused(ScannerUnavailable):
    """clamd answered but will never scan this stream (too large for its StreamMaxLength, or
    an answer this client does not know): mark the file failed rather than retry."""


class ClamdScanner:
    """Scans a stream of chunks with clamd; one connection per scan (clamd's INSTREAM ends
    its session)."""

    def __init__(self, address: str, *, timeout_s: float, chunk_bytes: int = 64 * 1024) -> None:
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be positive")
        self.address = address
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes
        url = urlsplit(address)
        if url.scheme == "tcp" and url.hostname and url.port:
            self._tcp: tuple[str, int] | None = (url.hostname, url.port)
            self._unix: str | None = None
        elif url.scheme == "unix" and url.path:
            self._tcp, self._unix = None, unquote(url.path)
        else:
            raise ValueError(f"clamd address must be tcp://host:port or unix:///path: {address!r}")

    async def scan(self, chunks: AsyncIterable[bytes]) -> ScanVerdict:
        """The verdict on the concatenated chunks (chunk boundaries do not matter to clamd)."""
        reader, writer = await self._connect()
        try:
            try:
                await self._send(writer, b"zINSTREAM\0")
                async for chunk in chunks:
                    view = memoryview(chunk)
                    for offset in range(0, len(view), self.chunk_bytes):
                        part = view[offset : offset + self.chunk_bytes]
                        await self._send(writer, struct.pack(">I", len(part)) + part)
                await self._send(writer, b"\0\0\0\0")
            except (ConnectionError, TimeoutError) as error:
                # clamd closes the stream when it refuses it (size limit): its reason, if it
                # sent one, is waiting to be read.
                reply = await self._reply(reader, quiet=True)
                if reply is not None:
                    return _verdict(reply)
                raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error
            reply = await self._reply(reader, quiet=False)
            assert reply is not None
            return _verdict(reply)
        finally:
            writer.close()

    async def ping(self) -> bool:
        """Whether clamd answers PING."""
        try:
            reader, writer = await self._connect()
        except ScannerUnavailable:
            return False
        try:
            await self._send(writer, b"zPING\0")
            return await self._reply(reader, quiet=True) == "PONG"
        except (ConnectionError, TimeoutError, ScannerUnavailable):
            return False
        finally:
            writer.close()

    async def version(self) -> str:
        """clamd's VERSION answer (engine and database version), for status pages."""
        reader, writer = await self._connect()
        try:
            await self._send(writer, b"zVERSION\0")
            reply = await self._reply(reader, quiet=False)
        except (ConnectionError, TimeoutError) as error:
            raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error
        finally:
            writer.close()
        assert reply is not None
        return reply

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self._tcp is not None:
                opening = asyncio.open_connection(*self._tcp)
            else:
                assert self._unix is not None
                opening = asyncio.open_unix_connection(self._unix)
            return await asyncio.wait_for(opening, self.timeout_s)
        except (OSError, TimeoutError) as error:
            raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.timeout_s)

    async def _reply(self, reader: asyncio.StreamReader, *, quiet: bool) -> str | None:
        """clamd's NUL-terminated answer; ``None`` (quiet) or ``ScannerUnavailable`` when
        there is none."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\0"), self.timeout_s)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            OSError,
            TimeoutError,
        ) as error:
            if quiet:
                return None
            raise ScannerUnavailable(
                f"clamd at {self.address} gave no verdict: {error!r}"
            ) from error
        return raw[:-1].decode("utf-8", "replace").strip()


def _verdict(reply: str) -> ScanVerdict:
    body = reply.removeprefix("stream:").strip()
    if body == "OK":
        return ScanVerdict(clean=True, signature=None)
    if body.endswith(" FOUND"):
        return ScanVerdict(clean=False, signature=body.removesuffix(" FOUND").strip())
    if _SIZE_LIMIT in body:
        raise ScanRefused(
            f"clamd refused the stream: {body} (raise StreamMaxLength in clamd.conf above "
            "attachments.max_upload_bytes)"
        )
    if body.endswith("ERROR"):
        raise ScannerUnavailable(f"clamd error: {body}")
    raise ScanRefused(f"unexpected clamd answer: {reply[:200]!r}")
