"""Project routes: create, list mine, read, manage members (stats: tasks/read_endpoints.py)."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import ProjectRole
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.projects import service
from taskstream.projects.models import Project
from taskstream.projects.schemas import (
    AddMemberRequest,
    CreateProjectRequest,
    MemberResponse,
    ProjectResponse,
)


def _project(project: Project, role: ProjectRole | None) -> ProjectResponse:
    return ProjectResponse(
        id=project.id,
        name=project.name,
        description=project.description,
        owner_id=project.owner_id,
        is_personal=project.is_personal,
        role=role,
        created_at=project.created_at,
    )


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

    @post(
        "/{project_id:uuid}/members",
        operation_id="addProjectMember",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(403, 409),
    )
    async def add_member(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[AddMemberRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> MemberResponse:
        """Add a user to the project with a role (maintainer or owner needed)."""
        await service.add_member(
            db_session,
            current_user,
            project_id=project_id,
            user_id=data.user_id,
            role=data.role,
            trace_id=trace_id,
        )
        await db_session.commit()
        return MemberResponse(project_id=project_id, user_id=data.user_id, role=data.role)

    @delete(
        "/{project_id:uuid}/members/{user_id:uuid}",
        operation_id="removeProjectMember",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(403, 409),
    )
    async def remove_member(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        """Remove a member (maintainers remove others; anyone may leave)."""
        await service.remove_member(db_session, current_user, project_id, user_id)
        await db_session.commit()
