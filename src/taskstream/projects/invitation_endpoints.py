"""Invitation routes: a maintainer invites an address, lists and withdraws the project's
pending invitations; the invited user lists theirs and accepts or declines one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.projects import invitations
from taskstream.projects.models import ProjectInvitation
from taskstream.projects.schemas import (
    InvitationPage,
    InvitationResponse,
    InviteRequest,
    MemberResponse,
    MyInvitation,
    MyInvitationPage,
)
from taskstream.web.cursors import decode_position, encode_position
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

MANAGE_PROBLEMS = problem_responses(403, 409)
CursorParam = Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)]


def _invitation(invitation: ProjectInvitation) -> InvitationResponse:
    return InvitationResponse(
        id=invitation.id,
        project_id=invitation.project_id,
        email=invitation.email,
        role=invitation.role,
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


class ProjectInvitationController(Controller):
    path = "/projects/{project_id:uuid}/invitations"
    tags = ["projects"]

    @post(
        "/",
        operation_id="inviteToProject",
        status_code=HTTP_201_CREATED,
        responses=MANAGE_PROBLEMS,
    )
    async def invite(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[InviteRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
    ) -> InvitationResponse:
        """Invite an email address (maintainer+); the same answer whether or not it has an
        account. 409 while an invitation of the address is pending."""
        invitation = await invitations.invite(
            db_session,
            current_user,
            project_id,
            email=data.email,
            role=data.role,
            ttl=timedelta(days=state.settings.projects.invitation_ttl_days),
            trace_id=trace_id,
        )
        await db_session.commit()
        return _invitation(invitation)

    @get("/", operation_id="listProjectInvitations", responses=MANAGE_PROBLEMS)
    async def list_invitations(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: CursorParam = None,
    ) -> InvitationPage:
        """The project's pending invitations, oldest first (maintainer+)."""
        rows, more = await invitations.list_project_invitations(
            db_session,
            current_user,
            project_id,
            after=decode_position(cursor),
            limit=page_size(limit, state.settings.api),
        )
        last = rows[-1] if more else None
        return InvitationPage(
            items=[_invitation(i) for i in rows],
            next_cursor=encode_position(last.created_at, last.id) if last else None,
        )

    @delete(
        "/{invitation_id:uuid}",
        operation_id="revokeProjectInvitation",
        status_code=HTTP_204_NO_CONTENT,
        responses=MANAGE_PROBLEMS,
    )
    async def revoke_invitation(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        invitation_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        """Withdraw a pending invitation (maintainer+)."""
        await invitations.revoke_invitation(db_session, current_user, project_id, invitation_id)
        await db_session.commit()


class InvitationController(Controller):
    path = "/invitations/{invitation_id:uuid}"
    tags = ["projects"]

    @post(
        "/accept",
        operation_id="acceptInvitation",
        status_code=HTTP_200_OK,
        responses=problem_responses(409),
    )
    async def accept(
        self,
        *,
        invitation_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> MemberResponse:
        """Accept an invitation of your address: you become a member with its role."""
        project_id, role = await invitations.answer_invitation(
            db_session, current_user, invitation_id, accept=True, trace_id=trace_id
        )
        await db_session.commit()
        return MemberResponse(project_id=project_id, user_id=current_user.user_id, role=role)

    @post(
        "/decline",
        operation_id="declineInvitation",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(409),
    )
    async def decline(
        self,
        *,
        invitation_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        """Decline an invitation of your address."""
        await invitations.answer_invitation(db_session, current_user, invitation_id, accept=False)
        await db_session.commit()


class MyInvitationsController(Controller):
    path = "/users/me/invitations"
    tags = ["users"]

    @get("/", operation_id="listMyInvitations", responses=problem_responses())
    async def list_mine(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: CursorParam = None,
    ) -> MyInvitationPage:
        """The pending invitations of your email address (matched ignoring case)."""
        rows, more = await invitations.my_invitations(
            db_session,
            current_user,
            after=decode_position(cursor),
            limit=page_size(limit, state.settings.api),
        )
        items = [
            MyInvitation(
                id=i.id,
                project_id=i.project_id,
                project_name=name,
                role=i.role,
                created_at=i.created_at,
                expires_at=i.expires_at,
            )
            for i, name in rows
        ]
        last = items[-1] if more else None
        return MyInvitationPage(
            items=items,
            next_cursor=encode_position(last.created_at, last.id) if last else None,
        )


CONTROLLERS = [ProjectInvitationController, InvitationController, MyInvitationsController]
