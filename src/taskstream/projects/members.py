"""Members of a project: list them, re-rank them under the rank rule, remove them or leave,
and the administrators' direct add. Direct writes, each with its event in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.errors import ConflictError, ForbiddenError, NotFoundError
from taskstream.principal import Principal
from taskstream.projects.repository import MemberRow, ProjectRepository
from taskstream.projects.service import (
    add_member_directly,
    check_rank,
    lock_project_role,
    record_project_event,
    require_project_role,
)


async def add_member(
    session: AsyncSession,
    principal: Principal,
    *,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    trace_id: str | None = None,
) -> None:
    """Add a member without their consent: administrators only (others invite by email)."""
    await require_project_role(session, principal, project_id)
    if not principal.is_admin:
        raise ForbiddenError(
            "Adding members directly is for administrators; invite them by email instead"
        )
    if not await ProjectRepository.from_session(session).user_is_active(user_id):
        raise NotFoundError("User not found")
    added = await add_member_directly(
        session,
        project_id=project_id,
        user_id=user_id,
        role=role,
        actor_id=principal.user_id,
        trace_id=trace_id,
    )
    if not added:
        raise ConflictError("The user is already a member of the project")


async def list_members(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[Sequence[MemberRow], bool]:
    """A page of the project's members (members only), oldest first, and whether more follow."""
    await require_project_role(session, principal, project_id)
    rows = await ProjectRepository.from_session(session).members_page(project_id, after, limit + 1)
    return rows[:limit], len(rows) > limit


async def change_member_role(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    *,
    trace_id: str | None = None,
) -> None:
    """Re-rank a member under the rank rule; the designated owner and the last owner keep
    the owner role (transfer the ownership first). ``project.member_role_changed`` event."""
    project, caller_role = await lock_project_role(
        session, principal, project_id, ProjectRole.MAINTAINER
    )
    repo = ProjectRepository.from_session(session)
    target_role = await repo.member_role(project_id, user_id)
    if target_role is None:
        raise NotFoundError("The user is not a member of the project")
    check_rank(caller_role, target=target_role, granting=role)
    if role is target_role:
        return
    if target_role is ProjectRole.OWNER:
        if project.owner_id == user_id:
            raise ConflictError("The project's owner keeps the owner role; transfer it first")
        if await repo.owner_count(project_id) <= 1:
            raise ConflictError("The last owner cannot be demoted")
    await repo.set_member_role(project_id, user_id, role)
    await record_project_event(
        session,
        "project.member_role_changed",
        project_id,
        principal.user_id,
        {"userId": str(user_id), "role": role.value, "previousRole": target_role.value},
        trace_id=trace_id,
    )


async def remove_member(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    trace_id: str | None = None,
) -> None:
    """Remove a member under the rank rule, or leave; the owner stays.
    ``project.member_removed`` event (``left``: the member removed themselves)."""
    leaving = user_id == principal.user_id
    project, caller_role = await lock_project_role(session, principal, project_id)
    repo = ProjectRepository.from_session(session)
    if not leaving:
        check_rank(caller_role)  # a plain member learns nothing about other users
    target_role = await repo.member_role(project_id, user_id)
    if target_role is None:
        raise NotFoundError("The user is not a member of the project")
    if not leaving:
        check_rank(caller_role, target=target_role)
    if project.owner_id == user_id:
        raise ConflictError("The project owner cannot be removed")
    if not await repo.remove_member(project_id, user_id):
        raise NotFoundError("The user is not a member of the project")
    await record_project_event(
        session,
        "project.member_removed",
        project_id,
        principal.user_id,
        {"userId": str(user_id), "role": target_role.value, "left": leaving},
        trace_id=trace_id,
    )
