"""A TCP proxy that a test can take down and bring back: while down, it refuses new
connections and cuts the open ones, exactly what a client sees of a storage outage."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class OutageProxy:
    target_host: str
    target_port: int
    down: bool = False
    server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> OutageProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        self.take_down()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def take_down(self) -> None:
        self.down = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def bring_back(self) -> None:
        self.down = False

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update({writer, up_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.discard(writer)
        self._open.discard(up_writer)
