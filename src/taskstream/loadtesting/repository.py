"""All SQL of the load-test verification: what became of a set of command ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from taskstream.db import Repository

# unnest joins: one round trip per chunk of ids, however many there are
_OUTCOMES = text(
    "SELECT s.command_id, s.status::text, s.reason, s.accepted_at, s.applied_at"
    " FROM unnest(CAST(:ids AS uuid[])) AS wanted(id)"
    " JOIN command_statuses s ON s.command_id = wanted.id"
)
_AUDIT_COUNTS = text(
    "SELECT e.command_id, count(*) FROM task_events e"
    " WHERE e.command_id = ANY(CAST(:ids AS uuid[])) GROUP BY e.command_id"
)


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    command_id: uuid.UUID
    status: str
    reason: str | None
    accepted_at: datetime
    applied_at: datetime


class VerificationRepository(Repository):
    async def outcomes(self, ids: Sequence[uuid.UUID]) -> list[CommandOutcome]:
        """The settled status row of each of ``ids`` that has one."""
        rows = await self.session.execute(_OUTCOMES, {"ids": list(ids)})
        return [CommandOutcome(*row) for row in rows]

    async def audit_counts(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many audit rows (``task_events``: one per applied command) each id left."""
        rows = await self.session.execute(_AUDIT_COUNTS, {"ids": list(ids)})
        return dict(rows.tuples().all())
