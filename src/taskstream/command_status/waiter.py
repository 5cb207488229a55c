"""Wake-ups for `GET /commands/{id}?wait=N`: one LISTEN connection per process.

The apply transaction runs ``pg_notify`` with the ids it settled, so a waiter learns about its
command when (and only if) the transaction commits, without polling the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg

from taskstream.command_status.records import COMMANDS_CHANNEL

log = logging.getLogger(__name__)


class SettledListener:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._connecting = asyncio.Lock()
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)

    async def _ensure_listening(self) -> None:
        async with self._connecting:
            if self._conn is not None and not self._conn.is_closed():
                return
            conn = await asyncpg.connect(self.dsn, timeout=5)
            await conn.add_listener(COMMANDS_CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_lost)
            self._conn = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for command_id in payload.split(","):
            for future in self._waiters.pop(command_id, ()):
                if not future.done():
                    future.set_result(None)

    def _on_lost(self, _conn: object) -> None:
        # Notifications may have been missed: wake everyone to re-read the database.
        self._conn = None
        waiters, self._waiters = self._waiters, defaultdict(set)
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)

    @contextlib.asynccontextmanager
    async def watch(self, command_id: uuid.UUID) -> AsyncIterator[asyncio.Future[None]]:
        """A future resolved when ``command_id`` is settled (or the listener was lost).
        Register before re-reading the status, so a settle in between is not missed."""
        await self._ensure_listening()
        key = str(command_id)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[key].add(future)
        try:
            yield future
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[key]

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
