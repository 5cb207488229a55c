"""`GET /commands/{id}`: accepted, applied or rejected, optionally waiting for the outcome."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.command_status.repository import CommandStatusRepository
from taskstream.command_status.service import CommandView, get_command_status
from taskstream.command_status.waiter import SettledListener
from taskstream.infra.probes import asyncpg_dsn
from taskstream.principal import Principal
from taskstream.settings import Settings
from taskstream.web.concurrency_caps import ConcurrencyCaps

_listener_lock = asyncio.Lock()


async def settled_listener(state: State) -> SettledListener:
    """The process's LISTEN connection, opened on first use (closed with the process)."""
    async with _listener_lock:
        listener = state.get("command_listener")
        if listener is None:
            settings: Settings = state.settings
            listener = SettledListener(asyncpg_dsn(settings.db.url))
            state.command_listener = listener
        return listener


class CommandController(Controller):
    path = "/commands"
    tags = ["commands"]

    @get("/{command_id:uuid}", operation_id="getCommand", summary="Command status")
    async def get_command(
        self,
        command_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                description="Seconds to wait for applied/rejected (capped by the server)",
            ),
        ] = 0.0,
    ) -> CommandView:
        """Whether a command is accepted, applied or rejected (with the reason); only its
        actor or an admin can see it. ``?wait=N`` waits up to N seconds for the outcome."""
        settings: Settings = state.settings
        wait_s = min(wait, settings.api.command_wait_max_s)
        repo = CommandStatusRepository(db_session, state.get("redis"))
        if wait_s <= 0:
            return await get_command_status(repo, current_user, command_id, wait_s=0)
        # waiting holds a connection and a listener slot: at most a few per user
        caps: ConcurrencyCaps = state.concurrency_caps
        cap = settings.api.max_command_waits_per_user
        claim = await caps.acquire("command-waits", current_user.user_id, cap, wait_s + 5)
        try:
            listener = await settled_listener(state)
            return await get_command_status(
                repo, current_user, command_id, wait_s=wait_s, listener=listener
            )
        finally:
            await caps.release(claim)
