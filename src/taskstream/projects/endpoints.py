"""Project routes: create, list mine, read, manage members, stats."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth.principal import Principal
from taskstream.enums import ProjectRole
from taskstream.problems import problem_responses
from taskstream.projects import service
from taskstream.projects.models import Project
from taskstream.projects.schemas import (
    ActivityPoint,
    AddMemberRequest,
    CreateProjectRequest,
    MemberResponse,
    ProjectResponse,
    ProjectStatsResponse,
    StatusCounts,
)
from taskstream.tasks.reads import TaskReadRepository
from taskstream.tasks.stats import count_overdue

ACTIVITY_MINUTES = 60


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

    @get("/{project_id:uuid}/stats", operation_id="getProjectStats", responses=problem_responses())
    async def stats(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> ProjectStatsResponse:
        """Task counts per status and the last hour's activity, as the consumer recorded them."""
        await service.require_project_role(db_session, current_user, project_id)
        reads = TaskReadRepository.from_session(db_session)
        row = await reads.stats(project_id)
        activity = await reads.activity(project_id, ACTIVITY_MINUTES)
        counts = StatusCounts()
        if row is not None:
            counts = StatusCounts(
                todo=row.todo,
                in_progress=row.in_progress,
                in_review=row.in_review,
                done=row.done,
                cancelled=row.cancelled,
            )
        return ProjectStatsResponse(
            project_id=project_id,
            counts=counts,
            total=counts.todo
            + counts.in_progress
            + counts.in_review
            + counts.done
            + counts.cancelled,
            overdue=await count_overdue(db_session, project_id),
            deleted=row.deleted if row else 0,
            updated_at=row.updated_at if row else None,
            activity=[
                ActivityPoint(minute=a.minute, created=a.created, completed=a.completed)
                for a in activity
            ],
        )
