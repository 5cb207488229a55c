"""Who may do what with attachments: the task's project decides, and a stranger learns
nothing (404 exactly like an unknown id)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.attachments.models import Attachment
from taskstream.attachments.repository import AttachmentRepository, TaskPeople
from taskstream.enums import ProjectRole
from taskstream.errors import ForbiddenError, NotFoundError
from taskstream.principal import Principal
from taskstream.projects.service import require_project_role, role_at_least


async def task_access(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, min_role: ProjectRole
) -> TaskPeople:
    """The live task, if the caller holds ``min_role`` in its project (403 below it)."""
    people = await AttachmentRepository.from_session(session).task_people(task_id)
    if people is None:
        raise NotFoundError("Task not found")
    try:
        await require_project_role(session, principal, people.project_id, min_role)
    except NotFoundError:
        raise NotFoundError("Task not found") from None
    return people


async def attachment_role(
    session: AsyncSession, principal: Principal, attachment: Attachment
) -> ProjectRole:
    """The caller's role in the attachment's project; 404 for non-members."""
    try:
        return await require_project_role(
            session, principal, attachment.project_id, ProjectRole.VIEWER
        )
    except NotFoundError:
        raise NotFoundError("Attachment not found") from None


def require_delete_right(principal: Principal, role: ProjectRole, attachment: Attachment) -> None:
    """The uploader, the project's maintainers and owners, and admins may delete."""
    if principal.is_admin or attachment.uploader_id == principal.user_id:
        return
    if not role_at_least(role, ProjectRole.MAINTAINER):
        raise ForbiddenError("Only the uploader, maintainers and admins delete attachments")
