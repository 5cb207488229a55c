"""A project's life after creation: rename, archive, soft delete and restore, purge, transfer.

All are direct writes (low volume, the caller wants the new state at once) with their event in
the outbox in the same transaction. After an archive, unarchive, delete or restore the endpoint
makes every API process forget the project's cached state (``lifecycle_feed.py``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from taskstream.principal import Principal
from taskstream.projects.models import Project
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import lock_project_role, record_project_event

PURGE_BATCH = 100


async def update_project(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    trace_id: str | None = None,
) -> tuple[Project, ProjectRole]:
    """Rename or re-describe a project (maintainer+); ``changes`` holds the fields sent
    (``msgspec.UNSET`` for the others). A ``project.updated`` event names the new values."""
    sent = {k: v for k, v in changes.items() if v is not msgspec.UNSET}
    if not sent:
        raise ValidationFailedError([FieldError("$", "name at least one field to change")])
    project, role = await lock_project_role(session, principal, project_id, ProjectRole.MAINTAINER)
    for field, value in sent.items():
        setattr(project, field, value)
    project.updated_at = datetime.now(UTC)
    await session.flush()
    await record_project_event(
        session, "project.updated", project_id, principal.user_id, sent, trace_id=trace_id
    )
    return project, role


async def set_archived(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    archived: bool,
    *,
    trace_id: str | None = None,
) -> tuple[Project, ProjectRole]:
    """Archive (readable, no new task commands) or unarchive a project (owner). Asking for
    the state the project is already in changes nothing and records no event."""
    project, role = await lock_project_role(session, principal, project_id, ProjectRole.OWNER)
    if project.is_personal:
        raise ConflictError("A personal project cannot be archived")
    if (project.archived_at is not None) == archived:
        return project, role
    project.archived_at = datetime.now(UTC) if archived else None
    await session.flush()
    event = "project.archived" if archived else "project.unarchived"
    await record_project_event(session, event, project_id, principal.user_id, {}, trace_id=trace_id)
    return project, role


async def delete_project(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    *,
    trace_id: str | None = None,
) -> None:
    """Soft-delete a project (owner): 404 for everyone at once, restorable by its owner
    within the grace period, purged after it."""
    project, _ = await lock_project_role(session, principal, project_id, ProjectRole.OWNER)
    if project.is_personal:
        raise ConflictError("A personal project cannot be deleted")
    project.deleted_at = datetime.now(UTC)
    await session.flush()
    await record_project_event(
        session, "project.deleted", project_id, principal.user_id, {}, trace_id=trace_id
    )


async def restore_project(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    grace: timedelta,
    *,
    trace_id: str | None = None,
) -> tuple[Project, ProjectRole]:
    """Undo a soft delete within ``grace`` (an owner of the project, or an admin). Anything
    else, a live project included, is 404: a deleted project is visible to no one else."""
    repo = ProjectRepository.from_session(session)
    project = await repo.get_for_update(project_id)
    role = (
        ProjectRole.OWNER
        if principal.is_admin
        else await repo.member_role(project_id, principal.user_id, deleted_too=True)
    )
    if (
        project is None
        or project.deleted_at is None
        or role is not ProjectRole.OWNER
        or project.deleted_at < datetime.now(UTC) - grace
    ):
        raise NotFoundError("Project not found")
    project.deleted_at = None
    await session.flush()
    await record_project_event(
        session, "project.restored", project_id, principal.user_id, {}, trace_id=trace_id
    )
    return project, role


async def purge_deleted(session: AsyncSession, grace: timedelta) -> list[uuid.UUID]:
    """Hard-delete one batch of projects deleted longer than ``grace`` ago (with their tasks
    and everything else of theirs); the caller commits and calls again until it is empty."""
    before = datetime.now(UTC) - grace
    return await ProjectRepository.from_session(session).purge_deleted(before, PURGE_BATCH)


async def transfer_ownership(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    trace_id: str | None = None,
) -> tuple[Project, ProjectRole]:
    """Make another active member the project's owner (owner); the previous owner becomes a
    maintainer. ``project.ownership_transferred`` event."""
    project, _ = await lock_project_role(session, principal, project_id, ProjectRole.OWNER)
    repo = ProjectRepository.from_session(session)
    if project.is_personal:
        raise ConflictError("A personal project cannot change owner")
    # a deactivated member could not act as owner, and the previous owner could not undo it
    if await repo.member_role(project_id, user_id) is None or not await repo.user_is_active(
        user_id
    ):
        raise NotFoundError("The user is not a member of the project")
    previous = project.owner_id
    if previous == user_id:
        raise ConflictError("The user already owns the project")
    project.owner_id = user_id
    if not await repo.set_member_role(project_id, user_id, ProjectRole.OWNER):
        raise NotFoundError("The user is not a member of the project")
    await repo.set_member_role(project_id, previous, ProjectRole.MAINTAINER)
    await session.flush()
    await record_project_event(
        session,
        "project.ownership_transferred",
        project_id,
        principal.user_id,
        {"userId": str(user_id), "previousOwnerId": str(previous)},
        trace_id=trace_id,
    )
    caller_role = await repo.member_role(project_id, principal.user_id)
    return project, ProjectRole.OWNER if principal.is_admin else caller_role or ProjectRole.VIEWER
