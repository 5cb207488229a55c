"""The clamd client against a real clamd with the shipped EICAR database: verdicts, chunking,
and every way of not getting a verdict, none of which may ever read as clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from taskstream.attachments.scanner import (
    ClamdScanner,
    ScannerUnavailable,
    ScanRefused,
    ScanVerdict,
)
from taskstream.infra.clamav import EICAR
from tests.integration.attachments.support import PrivateClamd
from tests.integration.http_support import free_port

MiB = 1024 * 1024


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def zeros(total: int, chunk: int = MiB) -> AsyncIterator[bytes]:
    block = bytes(chunk)
    for offset in range(0, total, chunk):
        yield block[: min(chunk, total - offset)]


@pytest.fixture
def scanner(clamd_address: str) -> ClamdScanner:
    return ClamdScanner(clamd_address, timeout_s=10)


@pytest.fixture(scope="module")
def small_clamd() -> Iterator[PrivateClamd]:
    """A clamd whose StreamMaxLength is 2 MiB (1 MiB uploads plus the margin)."""
    clamd = PrivateClamd(max_upload_bytes=MiB).start()
    yield clamd
    clamd.stop()


async def test_eicar_is_infected_with_its_signature(scanner: ClamdScanner) -> None:
    verdict = await scanner.scan(pieces(EICAR))
    assert verdict.clean is False
    assert verdict.signature is not None
    assert "Eicar-Test-Signature" in verdict.signature


async def test_a_clean_file_is_clean(scanner: ClamdScanner) -> None:
    assert await scanner.scan(pieces(b"just a text file\n" * 1000)) == ScanVerdict(True, None)


async def test_an_empty_stream_is_clean(scanner: ClamdScanner) -> None:
    assert await scanner.scan(pieces()) == ScanVerdict(True, None)


@pytest.mark.parametrize("frame_bytes", [1, 5, 67, 64 * 1024])
async def test_eicar_split_across_chunks_and_frames_is_detected(
    clamd_address: str, frame_bytes: int
) -> None:
    scanner = ClamdScanner(clamd_address, timeout_s=10, chunk_bytes=frame_bytes)
    parts = (EICAR[:1], EICAR[1:4], b"", EICAR[4:50], EICAR[50:])
    verdict = await scanner.scan(pieces(*parts))
    assert verdict.clean is False
    assert "Eicar" in (verdict.signature or "")


async def test_one_byte_more_than_eicar_is_not_the_eicar_file(scanner: ClamdScanner) -> None:
    # the shipped database matches the whole file's hash: proves the verdict depends on content
    assert (await scanner.scan(pieces(EICAR, b"\n"))).clean is True


async def test_ping(scanner: ClamdScanner) -> None:
    assert await scanner.ping() is True


async def test_a_unix_socket_address() -> None:
    clamd = PrivateClamd(unix_socket=True).start()
    try:
        scanner = ClamdScanner(clamd.address, timeout_s=10)
        assert clamd.address.startswith("unix://")
        assert (await scanner.scan(pieces(EICAR))).clean is False
        assert (await scanner.scan(pieces(b"hello"))).clean is True
    finally:
        clamd.stop()


async def test_a_stream_beyond_stream_max_length_is_refused(small_clamd: PrivateClamd) -> None:
    scanner = ClamdScanner(small_clamd.address, timeout_s=10)
    with pytest.raises(ScanRefused, match="size limit"):
        await scanner.scan(zeros(8 * MiB))
    # the refusal is a ScannerUnavailable too: a caller that only knows that never sees clean
    assert issubclass(ScanRefused, ScannerUnavailable)
    assert (await scanner.scan(zeros(MiB))).clean is True


async def test_nothing_listening_is_unavailable() -> None:
    scanner = ClamdScanner(f"tcp://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(ScannerUnavailable):
        await scanner.scan(pieces(b"data"))
    assert await scanner.ping() is False


@pytest.mark.fault
async def test_clamd_killed_is_unavailable(private_clamd: PrivateClamd) -> None:
    scanner = ClamdScanner(private_clamd.address, timeout_s=5)
    assert (await scanner.scan(pieces(EICAR))).clean is False
    private_clamd.kill()
    with pytest.raises(ScannerUnavailable):
        await scanner.scan(pieces(EICAR))
    assert await scanner.ping() is False


@pytest.mark.fault
async def test_clamd_killed_mid_stream_is_unavailable(private_clamd: PrivateClamd) -> None:
    scanner = ClamdScanner(private_clamd.address, timeout_s=5)

    async def killed_halfway() -> AsyncIterator[bytes]:
        yield bytes(MiB)
        private_clamd.kill()
        for _ in range(16):
            yield bytes(MiB)

    with pytest.raises(ScannerUnavailable):
        await scanner.scan(killed_halfway())


async def test_a_silent_server_times_out_as_unavailable() -> None:
    """A peer that accepts and reads but never answers (a hung clamd)."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        scanner = ClamdScanner(f"tcp://127.0.0.1:{port}", timeout_s=0.5)
        with pytest.raises(ScannerUnavailable, match="no verdict"):
            await scanner.scan(pieces(b"data"))
        assert await scanner.ping() is False
    finally:
        server.close()
        await server.wait_closed()


async def test_a_garbled_answer_is_refused_not_clean() -> None:
    async def nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(b"zINSTREAM\0") + 4 + 4 + 4)
        writer.write(b"stream: maybe\0")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(nonsense, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        scanner = ClamdScanner(f"tcp://127.0.0.1:{port}", timeout_s=2)
        with pytest.raises(ScanRefused, match="unexpected"):
            await scanner.scan(pieces(b"data"))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_failing_source_propagates(scanner: ClamdScanner) -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        raise SourceBroke

    with pytest.raises(SourceBroke):
        await scanner.scan(broken())
    assert await scanner.ping() is True


def test_bad_addresses_are_refused() -> None:
    for address in ["127.0.0.1:3310", "tcp://127.0.0.1", "http://x:1", "unix://"]:
        with pytest.raises(ValueError, match="clamd address"):
            ClamdScanner(address, timeout_s=1)
