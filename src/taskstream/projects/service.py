"""Projects and memberships: written synchronously, strongly consistent, low volume."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.errors import ConflictError, ForbiddenError, NotFoundError
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


async def require_project_role(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    min_role: ProjectRole = ProjectRole.VIEWER,
) -> ProjectRole:
    """The caller's role in the project, or raise.

    Non-members get ``NotFoundError`` (the project's existence is not revealed); members below
    ``min_role`` get ``ForbiddenError``. Admins act as owners of every existing project.
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
    await OutboxRepository.from_session(session).add(
        [
            DomainEvent(
                event_id=derived_event_id(project.id, "project.created"),
                type="project.created",
                occurred_at=project.created_at,
                aggregate_id=project.id,
                actor_id=owner_id,
                project_id=project.id,
                trace_id=trace_id,
                data={
                    "projectId": str(project.id),
                    "name": name,
                    "ownerId": str(owner_id),
                    "isPersonal": is_personal,
                },
            )
        ]
    )
    return project


async def list_projects(
    session: AsyncSession, principal: Principal
) -> Sequence[tuple[Project, ProjectRole]]:
    """The projects the caller is a member of, with the caller's role."""
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


async def add_member(
    session: AsyncSession,
    principal: Principal,
    *,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    trace_id: str | None = None,
) -> None:
    """Add a member (maintainers add members/viewers; owners any role), with a
    ``project.member_added`` event in the outbox."""
    caller_role = await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)
    if not role_at_least(caller_role, ProjectRole.OWNER) and role_at_least(
        role, ProjectRole.MAINTAINER
    ):
        raise ForbiddenError("Only the owner can grant the maintainer or owner role")
    projects = ProjectRepository.from_session(session)
    if not await projects.user_is_active(user_id):
        raise NotFoundError("User not found")
    if not await projects.add_member(project_id, user_id, role):
        raise ConflictError("The user is already a member of the project")
    cause = uuid.uuid4()
    await OutboxRepository.from_session(session).add(
        [
            DomainEvent(
                event_id=derived_event_id(cause, "project.member_added"),
                type="project.member_added",
                occurred_at=datetime.now(UTC),
                aggregate_id=project_id,
                actor_id=principal.user_id,
                project_id=project_id,
                trace_id=trace_id,
                data={"projectId": str(project_id), "userId": str(user_id), "role": role.value},
            )
        ]
    )


async def remove_member(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Remove a member of strictly lower rank than the caller, or leave; the owner stays."""
    leaving = user_id == principal.user_id
    min_role = ProjectRole.VIEWER if leaving else ProjectRole.MAINTAINER
    caller_role = await require_project_role(session, principal, project_id, min_role)
    repo = ProjectRepository.from_session(session)
    project = await repo.get(project_id)
    if project is None:
        raise NotFoundError("Project not found")
    target_role = await repo.member_role(project_id, user_id)
    if target_role is None:
        raise NotFoundError("The user is not a member of the project")
    if not leaving and ROLE_RANK[target_role] >= ROLE_RANK[caller_role]:
        raise ForbiddenError("Only members of a lower role than yours can be removed")
    if project.owner_id == user_id:
        raise ConflictError("The project owner cannot be removed")
    if not await repo.remove_member(project_id, user_id):
        raise NotFoundError("The user is not a member of the project")
