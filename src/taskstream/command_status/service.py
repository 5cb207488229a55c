"""Read a command's status, optionally waiting until the consumer settled it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import msgspec

from taskstream.command_status.repository import CommandRecord, CommandStatusRepository
from taskstream.command_status.waiter import SettledListener
from taskstream.errors import NotFoundError
from taskstream.fields import example
from taskstream.principal import Principal

SETTLED = frozenset({"applied", "rejected"})


@example(
    {
        "commandId": "0192f1e6-3c5d-7e6f-9a71-8293a4b5c6d7",
        "status": "rejected",
        "taskId": "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6",
        "reason": "task not found",
    }
)
class CommandView(msgspec.Struct, rename="camel", omit_defaults=True):
    command_id: uuid.UUID
    status: str
    task_id: uuid.UUID | None = None
    reason: str | None = None


def _visible(record: CommandRecord | None, principal: Principal) -> CommandRecord | None:
    if record is None:
        return None
    return record if principal.is_admin or record.actor_id == principal.user_id else None


async def read_command(
    repo: CommandStatusRepository, principal: Principal, command_id: uuid.UUID
) -> CommandRecord:
    """The command's status for its actor (or an admin); NotFoundError for anyone else, so
    command ids cannot be probed."""
    record = _visible(await repo.settled(command_id), principal) or _visible(
        await repo.accepted(command_id), principal
    )
    if record is None:
        raise NotFoundError("command not found")
    return record


async def get_command_status(
    repo: CommandStatusRepository,
    principal: Principal,
    command_id: uuid.UUID,
    *,
    wait_s: float = 0.0,
    listener: SettledListener | None = None,
) -> CommandView:
    """The status; with ``wait_s`` > 0 and a listener, waits up to that long for an accepted
    command to be applied or rejected (woken by the apply transaction's NOTIFY, no polling)."""
    record = await read_command(repo, principal, command_id)
    if record.status in SETTLED or wait_s <= 0 or listener is None:
        return _view(record)
    deadline = time.monotonic() + wait_s
    await repo.release()  # hold no pooled connection while waiting
    async with listener.watch(command_id) as settled:
        # Re-read after registering: a settle between the first read and LISTEN counts.
        record = await read_command(repo, principal, command_id)
        await repo.release()
        if record.status in SETTLED:
            return _view(record)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(settled), max(0.0, deadline - time.monotonic()))
    if settled.done():
        record = await read_command(repo, principal, command_id)
    return _view(record)


def _view(record: CommandRecord) -> CommandView:
    return CommandView(record.command_id, record.status, record.task_id, record.reason)
