"""Projects and memberships: written synchronously, strongly consistent, low volume.

Lifecycle changes (rename, archive, delete, transfer) are in ``lifecycle.py``, member changes
in ``members.py``, invitations in ``invitations.py``; all use the rules defined here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.errors import ForbiddenError, NotFoundError, ProjectArchivedError
from taskstream.messages import DomainEvent
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.principal import Principal
from taskstream.projects.models import Project
from taskstream.projects.repository import ProjectRepository

ROLE_RANK: dict[ProjectRole, int] = {
    ProjectRole.VIEWER: 0,
    ProjectRole.MEMBER: 1,
    ProjectRole.MAINTAINER: 2,
    ProjectRole.OWNER: 3,
}


def role_at_least(role: ProjectRole, min_role: ProjectRole) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[min_role]


def check_rank(
    caller: ProjectRole,
    *,
    target: ProjectRole | None = None,
    granting: ProjectRole | None = None,
) -> None:
    """The one rank rule for acting on other members (removing, re-ranking, inviting).

    Managing others needs maintainer; a caller acts only on members of a lower rank than
    their own (owners on other owners too); only owners grant the maintainer or owner role.
    ``target``: the role of the member acted on (None: a new member); ``granting``: the role
    given (None: a removal)."""
    if not role_at_least(caller, ProjectRole.MAINTAINER):
        raise ForbiddenError("This needs the maintainer role in the project")
    if caller is ProjectRole.OWNER:
        return
    if granting is not None and role_at_least(granting, ProjectRole.MAINTAINER):
        raise ForbiddenError("Only owners can grant the maintainer or owner role")
    if target is not None and ROLE_RANK[target] >= ROLE_RANK[caller]:
        raise ForbiddenError("Only members of a lower role than yours can be changed")


async def require_project_role(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    min_role: ProjectRole = ProjectRole.VIEWER,
) -> ProjectRole:
    """The caller's role in the project, or raise.

    Non-members get ``NotFoundError`` (the project's existence is not revealed), and so does
    everyone for a soft-deleted project; members below ``min_role`` get ``ForbiddenError``.
    Admins act as owners of every live project.
    """
    repo = ProjectRepository.from_session(session)
    if principal.is_admin:
        if await repo.get(project_id) is None:
            raise NotFoundError("Project not found")
        return ProjectRole.OWNER
    role = await repo.member_role(project_id, principal.user_id)
    if role is None:
        raise NotFoundError("Project not found")
    if not role_at_least(role, min_role):
        raise ForbiddenError(f"This needs the {min_role.value} role in the project")
    return role


async def lock_project_role(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    min_role: ProjectRole = ProjectRole.VIEWER,
) -> tuple[Project, ProjectRole]:
    """The live project, locked until the transaction ends, and the caller's role in it read
    after the lock: changes of members and ownership apply one after the other, each with
    the role its caller holds once the previous one is committed (404 and 403 as
    ``require_project_role``)."""
    await require_project_role(session, principal, project_id, min_role)
    project = await ProjectRepository.from_session(session).get_for_update(project_id)
    if project is None or project.deleted_at is not None:
        raise NotFoundError("Project not found")
    return project, await require_project_role(session, principal, project_id, min_role)


async def refuse_if_archived(session: AsyncSession, project_id: uuid.UUID) -> None:
    """409 ``project-archived`` for a write to the content of an archived project (its tasks
    take no commands and its threads no comments until it is unarchived)."""
    row = await ProjectRepository.from_session(session).lifecycle(project_id)
    if row is not None and row.archived_at is not None:
        raise ProjectArchivedError(
            "The project is archived: it is read-only until it is unarchived"
        )


async def record_project_event(
    session: AsyncSession,
    event_type: str,
    project_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    data: dict[str, Any],
    *,
    trace_id: str | None = None,
    cause: uuid.UUID | None = None,
) -> None:
    """Append one project event to the outbox in the caller's transaction; ``cause`` (default:
    a fresh id, the change itself) derives the event id."""
    await OutboxRepository.from_session(session).add(
        [
            DomainEvent(
                event_id=derived_event_id(cause or uuid.uuid4(), event_type),
                type=event_type,
                occurred_at=datetime.now(UTC),
                aggregate_id=project_id,
                actor_id=actor_id,
                project_id=project_id,
                trace_id=trace_id,
                data={"projectId": str(project_id), **data},
            )
        ]
    )


async def create_project(
    session: AsyncSession,
    owner_id: uuid.UUID,
    name: str,
    description: str | None = None,
    *,
    is_personal: bool = False,
    trace_id: str | None = None,
) -> Project:
    """Create a project owned by ``owner_id`` and its owner membership, with a
    ``project.created`` event in the outbox, in the caller's transaction."""
    repo = ProjectRepository.from_session(session)
    project = Project(
        id=uuid.uuid4(),
        name=name,
        description=description,
        owner_id=owner_id,
        is_personal=is_personal,
        created_at=datetime.now(UTC),
    )
    await repo.add(project)
    await repo.add_member(project.id, owner_id, ProjectRole.OWNER)
    await record_project_event(
        session,
        "project.created",
        project.id,
        owner_id,
        {"name": name, "ownerId": str(owner_id), "isPersonal": is_personal},
        trace_id=trace_id,
        cause=project.id,
    )
    return project


async def list_projects(
    session: AsyncSession, principal: Principal
) -> Sequence[tuple[Project, ProjectRole]]:
    """The live projects the caller is a member of, with the caller's role."""
    return await ProjectRepository.from_session(session).list_for_user(principal.user_id)


async def get_project(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID
) -> tuple[Project, ProjectRole]:
    """One project the caller can see (404 otherwise)."""
    role = await require_project_role(session, principal, project_id)
    project = await ProjectRepository.from_session(session).get(project_id)
    if project is None:
        raise NotFoundError("Project not found")
    return project, role


async def add_member_directly(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    actor_id: uuid.UUID | None,
    trace_id: str | None = None,
) -> bool:
    """Make ``user_id`` a member with ``role`` and record ``project.member_added``; False
    (and no event) when they already are one. No authorisation: the callers (an accepted
    invitation, an admin, the load-test seeding) have decided."""
    if not await ProjectRepository.from_session(session).add_member(project_id, user_id, role):
        return False
    await record_project_event(
        session,
        "project.member_added",
        project_id,
        actor_id,
        {"userId": str(user_id), "role": role.value},
        trace_id=trace_id,
    )
    return True
