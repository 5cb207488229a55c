"""Project routes: create, list mine, read, rename, archive, delete and restore, transfer
(members: ``member_endpoints.py``; invitations: ``invitation_endpoints.py``; stats:
tasks/read_endpoints.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.projects import lifecycle, service
from taskstream.projects.access import ProjectAccessCache
from taskstream.projects.lifecycle_feed import announce_lifecycle_change
from taskstream.projects.models import Project
from taskstream.projects.schemas import (
    CreateProjectRequest,
    ProjectResponse,
    TransferOwnershipRequest,
    UpdateProjectRequest,
)

MANAGE_PROBLEMS = problem_responses(403, 409)


def _project(project: Project, role: ProjectRole | None) -> ProjectResponse:
    return ProjectResponse(
        id=project.id,
        name=project.name,
        description=project.description,
        owner_id=project.owner_id,
        is_personal=project.is_personal,
        role=role,
        created_at=project.created_at,
        archived_at=project.archived_at,
    )


async def _lifecycle_changed(state: State, project_id: uuid.UUID) -> None:
    """Forget the project's cached lifecycle here, and have every API process forget it."""
    access: ProjectAccessCache = state.project_access
    access.forget_project(project_id)
    await announce_lifecycle_change(state.redis, project_id)


def _grace(state: State) -> timedelta:
    return timedelta(days=state.settings.projects.delete_grace_days)


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]

    @post(
        "/",
        operation_id="createProject",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(),
    )
    async def create_project(
        self,
        *,
        data: JSONBody[CreateProjectRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> ProjectResponse:
        """Create a project owned by the caller."""
        project = await service.create_project(
            db_session, current_user.user_id, data.name, data.description, trace_id=trace_id
        )
        await db_session.commit()
        return _project(project, ProjectRole.OWNER)

    @get("/", operation_id="listProjects", responses=problem_responses())
    async def list_projects(
        self, *, current_user: NamedDependency[Principal], db_session: NamedDependency[AsyncSession]
    ) -> list[ProjectResponse]:
        """The projects the caller is a member of."""
        rows = await service.list_projects(db_session, current_user)
        return [_project(project, role) for project, role in rows]

    @get("/{project_id:uuid}", operation_id="getProject", responses=problem_responses())
    async def get_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> ProjectResponse:
        """One project the caller is a member of."""
        project, role = await service.get_project(db_session, current_user, project_id)
        return _project(project, role)

    @patch("/{project_id:uuid}", operation_id="updateProject", responses=MANAGE_PROBLEMS)
    async def update_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[UpdateProjectRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> ProjectResponse:
        """Rename or re-describe a project (maintainer or owner); send the fields to change."""
        project, role = await lifecycle.update_project(
            db_session, current_user, project_id, msgspec.structs.asdict(data), trace_id=trace_id
        )
        await db_session.commit()
        return _project(project, role)

    @post(
        "/{project_id:uuid}/archive",
        operation_id="archiveProject",
        status_code=HTTP_200_OK,
        responses=MANAGE_PROBLEMS,
    )
    async def archive_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
    ) -> ProjectResponse:
        """Archive a project (owner): readable, but new task commands get 409."""
        project, role = await lifecycle.set_archived(
            db_session, current_user, project_id, True, trace_id=trace_id
        )
        await db_session.commit()
        await _lifecycle_changed(state, project_id)
        return _project(project, role)

    @post(
        "/{project_id:uuid}/unarchive",
        operation_id="unarchiveProject",
        status_code=HTTP_200_OK,
        responses=MANAGE_PROBLEMS,
    )
    async def unarchive_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
    ) -> ProjectResponse:
        """Unarchive a project (owner): it takes task commands again."""
        project, role = await lifecycle.set_archived(
            db_session, current_user, project_id, False, trace_id=trace_id
        )
        await db_session.commit()
        await _lifecycle_changed(state, project_id)
        return _project(project, role)

    @delete(
        "/{project_id:uuid}",
        operation_id="deleteProject",
        status_code=HTTP_204_NO_CONTENT,
        responses=MANAGE_PROBLEMS,
    )
    async def delete_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
    ) -> None:
        """Delete a project (owner): gone for everyone at once, restorable by its owner during
        the grace period (projects.delete_grace_days), then purged with its tasks."""
        await lifecycle.delete_project(db_session, current_user, project_id, trace_id=trace_id)
        await db_session.commit()
        await _lifecycle_changed(state, project_id)

    @post(
        "/{project_id:uuid}/restore",
        operation_id="restoreProject",
        status_code=HTTP_200_OK,
        responses=problem_responses(),
    )
    async def restore_project(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
    ) -> ProjectResponse:
        """Undo the deletion of a project (its owner, within the grace period)."""
        project, role = await lifecycle.restore_project(
            db_session, current_user, project_id, _grace(state), trace_id=trace_id
        )
        await db_session.commit()
        await _lifecycle_changed(state, project_id)
        return _project(project, role)

    @post(
        "/{project_id:uuid}/transfer",
        operation_id="transferProjectOwnership",
        status_code=HTTP_200_OK,
        responses=MANAGE_PROBLEMS,
    )
    async def transfer_ownership(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[TransferOwnershipRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> ProjectResponse:
        """Make another member the owner (owner); the previous owner becomes a maintainer."""
        project, role = await lifecycle.transfer_ownership(
            db_session, current_user, project_id, data.user_id, trace_id=trace_id
        )
        await db_session.commit()
        return _project(project, role)
