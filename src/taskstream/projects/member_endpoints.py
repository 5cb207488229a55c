"""Member routes: list and re-rank members, remove or leave. Adding a user without their
consent is for administrators only; everyone else joins by invitation
(``invitation_endpoints.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.projects import members
from taskstream.projects.schemas import (
    AddMemberRequest,
    ChangeMemberRoleRequest,
    MemberItem,
    MemberPage,
    MemberResponse,
)
from taskstream.web.cursors import decode_position, encode_position
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

MANAGE_PROBLEMS = problem_responses(403, 409)
CursorParam = Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)]


class MemberController(Controller):
    path = "/projects/{project_id:uuid}/members"
    tags = ["projects"]

    @get("/", operation_id="listProjectMembers", responses=problem_responses())
    async def list_members(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: CursorParam = None,
    ) -> MemberPage:
        """The project's members with their names and roles, by join date (members only)."""
        rows, more = await members.list_members(
            db_session,
            current_user,
            project_id,
            after=decode_position(cursor),
            limit=page_size(limit, state.settings.api),
        )
        items = [MemberItem(user_id=u, name=n, role=r, joined_at=j) for u, n, r, j in rows]
        last = items[-1] if more else None
        return MemberPage(
            items=items,
            next_cursor=encode_position(last.joined_at, last.user_id) if last else None,
        )

    @post(
        "/",
        operation_id="addProjectMember",
        status_code=HTTP_201_CREATED,
        responses=MANAGE_PROBLEMS,
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
        """Add a user directly, without their consent (administrators only; others invite)."""
        await members.add_member(
            db_session,
            current_user,
            project_id=project_id,
            user_id=data.user_id,
            role=data.role,
            trace_id=trace_id,
        )
        await db_session.commit()
        return MemberResponse(project_id=project_id, user_id=data.user_id, role=data.role)

    @patch("/{user_id:uuid}", operation_id="changeProjectMemberRole", responses=MANAGE_PROBLEMS)
    async def change_role(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[ChangeMemberRoleRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> MemberResponse:
        """Change a member's role (lower ranks than yours; maintainer and owner only by owners)."""
        await members.change_member_role(
            db_session, current_user, project_id, user_id, data.role, trace_id=trace_id
        )
        await db_session.commit()
        return MemberResponse(project_id=project_id, user_id=user_id, role=data.role)

    @delete(
        "/{user_id:uuid}",
        operation_id="removeProjectMember",
        status_code=HTTP_204_NO_CONTENT,
        responses=MANAGE_PROBLEMS,
    )
    async def remove_member(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> None:
        """Remove a member (maintainers remove lower ranks; anyone may leave)."""
        await members.remove_member(
            db_session, current_user, project_id, user_id, trace_id=trace_id
        )
        await db_session.commit()


CONTROLLERS = [MemberController]
