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
import socket
import struct
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Literal, overload
from urllib.parse import unquote, urlsplit

_SIZE_LIMIT = "INSTREAM size limit exceeded"
_REPLY_MAX = 64 * 1024
# INSTREAM frame size: clamd pays a fixed cost per frame. On 20 MB files 1 MiB frames scanned
# about twice as fast as 64 KiB ones (BENCHMARKS.md), and the stores yield 1 MiB chunks, so
# they pass through unsplit. Larger frames gained little more.
DEFAULT_FRAME_BYTES = 1024 * 1024


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

    def __init__(
        self, address: str, *, timeout_s: float, chunk_bytes: int = DEFAULT_FRAME_BYTES
    ) -> None:
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
        sock = await self._connect()
        try:
            try:
                await self._send(sock, b"zINSTREAM\0")
                async for chunk in chunks:
                    view = memoryview(chunk)
                    for offset in range(0, len(view), self.chunk_bytes):
                        part = view[offset : offset + self.chunk_bytes]
                        await self._send(sock, struct.pack(">I", len(part)) + part)
                await self._send(sock, b"\0\0\0\0")
            except (ConnectionError, TimeoutError) as error:
                # clamd closes the stream when it refuses it (size limit): its reason, sent
                # before the close, is still readable on the raw socket.
                reply = await self._reply(sock, quiet=True)
                if reply:
                    return _verdict(reply)
                raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error
            return _verdict(await self._reply(sock, quiet=False))
        finally:
            sock.close()

    async def ping(self) -> bool:
        """Whether clamd answers PING."""
        try:
            return await self._command(b"zPING\0") == "PONG"
        except ScannerUnavailable:
            return False

    async def version(self) -> str:
        """clamd's VERSION answer (engine and database version), for status pages."""
        return await self._command(b"zVERSION\0")

    async def _command(self, command: bytes) -> str:
        sock = await self._connect()
        try:
            try:
                await self._send(sock, command)
            except (ConnectionError, TimeoutError) as error:
                raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error
            return await self._reply(sock, quiet=False)
        finally:
            sock.close()

    # Raw non-blocking sockets rather than asyncio streams: a stream transport drops what the
    # peer sent before closing as soon as a write fails, and that is where clamd's reason is.
    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        if self._tcp is not None:
            family, target = socket.AF_INET, self._tcp
            if ":" in self._tcp[0]:
                family = socket.AF_INET6
        else:
            family, target = socket.AF_UNIX, self._unix  # type: ignore[assignment]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, target), self.timeout_s)
        except (OSError, TimeoutError) as error:
            sock.close()
            raise ScannerUnavailable(f"clamd at {self.address}: {error!r}") from error
        return sock

    async def _send(self, sock: socket.socket, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_sendall(sock, data), self.timeout_s)

    @overload
    async def _reply(self, sock: socket.socket, *, quiet: Literal[False]) -> str: ...
    @overload
    async def _reply(self, sock: socket.socket, *, quiet: bool) -> str | None: ...
    async def _reply(self, sock: socket.socket, *, quiet: bool) -> str | None:
        """clamd's NUL-terminated answer; ``None`` (quiet) or ``ScannerUnavailable`` when
        there is none."""
        loop = asyncio.get_running_loop()
        received = bytearray()
        try:
            while b"\0" not in received and len(received) < _REPLY_MAX:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), self.timeout_s)
                if not data:
                    break
                received += data
        except (OSError, TimeoutError) as error:
            if not received:
                if quiet:
                    return None
                raise ScannerUnavailable(
                    f"clamd at {self.address} gave no verdict: {error!r}"
                ) from error
        if not received:
            if quiet:
                return None
            raise ScannerUnavailable(f"clamd at {self.address} gave no verdict: closed")
        return bytes(received).partition(b"\0")[0].decode("utf-8", "replace").strip()


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
