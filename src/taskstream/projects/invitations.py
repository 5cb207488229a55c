"""Invitations by email: a maintainer invites an address, its owner accepts or declines.

Nobody joins a project without consent. The answer to an invitation is the same whether or not
the address belongs to a user (no enumeration); an invitee who already has an account hears
of it (``project.member_invited``), an address that registers later finds it in
``GET /users/me/invitations`` (matched ignoring case). Direct writes with outbox events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import InvitationStatus, ProjectRole
from taskstream.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    ValidationFailedError,
)
from taskstream.principal import Principal
from taskstream.projects.invitation_repository import InvitationRepository, InvitationRow
from taskstream.projects.models import ProjectInvitation
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import (
    add_member_directly,
    check_rank,
    record_project_event,
    require_project_role,
)

Position = tuple[datetime, uuid.UUID]


def normalised_email(email: str) -> str:
    """The address as stored and matched: trimmed, lower-cased; 422 if it is not one."""
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise ValidationFailedError([FieldError("email", "must be an email address")])
    return address


async def invite(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    *,
    email: str,
    role: ProjectRole,
    ttl: timedelta,
    trace_id: str | None = None,
) -> ProjectInvitation:
    """Invite an address with a role (maintainer+; only owners grant maintainer or owner).
    409 while an invitation of the address to the project is pending."""
    address = normalised_email(email)
    caller_role = await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)
    check_rank(caller_role, granting=role)
    repo = InvitationRepository.from_session(session)
    now = datetime.now(UTC)
    await repo.expire_lapsed(project_id, address, now)
    invitation = ProjectInvitation(
        id=uuid.uuid4(),
        project_id=project_id,
        email=address,
        role=role,
        status=InvitationStatus.PENDING,
        invited_by=principal.user_id,
        created_at=now,
        expires_at=now + ttl,
    )
    if not await repo.add_pending(invitation):
        raise ConflictError("An invitation of this address to the project is pending")
    invitee = await repo.active_user_with_email(address)
    if invitee is not None:
        project = await ProjectRepository.from_session(session).get(project_id)
        await record_project_event(
            session,
            "project.member_invited",
            project_id,
            principal.user_id,
            {
                "invitationId": str(invitation.id),
                "userId": str(invitee),
                "role": role.value,
                "projectName": project.name if project else "",
            },
            trace_id=trace_id,
            cause=invitation.id,
        )
    return invitation


async def list_project_invitations(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    *,
    after: Position | None,
    limit: int,
) -> tuple[Sequence[ProjectInvitation], bool]:
    """A page of the project's pending invitations (maintainer+), oldest first."""
    await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)
    rows = await InvitationRepository.from_session(session).project_page(
        project_id, datetime.now(UTC), after, limit + 1
    )
    return rows[:limit], len(rows) > limit


async def revoke_invitation(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    """Withdraw a pending invitation (maintainer+; one that grants maintainer or owner: an
    owner, as for making it); 404 if there is none pending."""
    caller_role = await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)
    repo = InvitationRepository.from_session(session)
    role = await repo.pending_role(project_id, invitation_id)
    if role is None:
        raise NotFoundError("No pending invitation with this id")
    check_rank(caller_role, granting=role)
    if not await repo.revoke(project_id, invitation_id, datetime.now(UTC)):
        raise NotFoundError("No pending invitation with this id")


async def my_invitations(
    session: AsyncSession, principal: Principal, *, after: Position | None, limit: int
) -> tuple[Sequence[InvitationRow], bool]:
    """A page of the pending invitations of the caller's address, oldest first."""
    rows = await InvitationRepository.from_session(session).mine_page(
        principal.user_id, datetime.now(UTC), after, limit + 1
    )
    return rows[:limit], len(rows) > limit


async def answer_invitation(
    session: AsyncSession,
    principal: Principal,
    invitation_id: uuid.UUID,
    *,
    accept: bool,
    trace_id: str | None = None,
) -> tuple[uuid.UUID, ProjectRole]:
    """Accept (become a member with the invited role; ``project.member_added``) or decline an
    invitation of the caller's address: (project id, role). One of concurrent answers wins;
    the others get 409. Someone who is already a member keeps their role."""
    repo = InvitationRepository.from_session(session)
    status = InvitationStatus.ACCEPTED if accept else InvitationStatus.DECLINED
    answered = await repo.answer(invitation_id, principal.user_id, status, datetime.now(UTC))
    if answered is None:
        if await repo.addressed_to(invitation_id, principal.user_id) is None:
            raise NotFoundError("Invitation not found")
        raise ConflictError("The invitation was already answered, revoked or has expired")
    project_id, role = answered
    if accept:
        await add_member_directly(
            session,
            project_id=project_id,
            user_id=principal.user_id,
            role=role,
            actor_id=principal.user_id,
            trace_id=trace_id,
        )
        current = await ProjectRepository.from_session(session).member_role(
            project_id, principal.user_id
        )
        role = current or role
    return project_id, role
