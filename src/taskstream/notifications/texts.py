"""What a notification says: one title per event type, plus the small data a client links on."""

from __future__ import annotations

from typing import Any, Final

from taskstream.auth.reset_tokens import reset_link
from taskstream.messages import DomainEvent
from taskstream.notifications.events import data_uuid
from taskstream.settings import AuthSettings

TITLES: Final[dict[str, str]] = {
    "user.created": "Welcome to taskstream, {name}",
    "project.created": "Project created",
    "project.member_added": "You were added to a project as {role}",
    "task.created": "New task: {title}",
    "task.updated": "Task updated: {title}",
    "task.assigned": "Task assigned: {title}",
    "task.status_changed": "{title}: {from} -> {to}",
    "task.review_requested": "Review requested: {title}",
    "task.reviewed": "Task reviewed ({verdict}): {title}",
    "task.completed": "Task completed: {title}",
    "task.deleted": "Task deleted: {title}",
    "task.overdue": "Task overdue: {title}",
    "task.commented": "New comment on {title}",
    "task.mentioned": "You were mentioned on {title}",
    "task.comment_edited": "Comment edited on {title}",
    "task.comment_deleted": "Comment deleted on {title}",
    "user.password_changed": "Your taskstream password was changed",
    "user.password_reset_requested": "Reset your taskstream password",
    "project.updated": "Project updated",
    "project.archived": "Project archived",
    "project.unarchived": "Project unarchived",
    "project.deleted": "Project deleted",
    "project.restored": "Project restored",
    "project.ownership_transferred": "Project ownership transferred",
    "project.member_role_changed": "Your role in a project is now {role}",
    "project.member_invited": "You are invited to {projectName} as {role}",
    "attachment.ready": "Attachment ready: {name}",
    "attachment.quarantined": "Attachment quarantined (infected): {name}",
    "attachment.failed": "Attachment failed: {name}",
    "project.member_removed": "A member left or was removed from the project",
}

LINK_KEYS: Final = (
    "taskId",
    "projectId",
    "status",
    "assigneeId",
    "reviewerId",
    "userId",
    "role",
    "commentId",
    "invitationId",
    "attachmentId",
)


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render_title(event: DomainEvent) -> str:
    """A one-line, human title; unknown fields render as '?' rather than failing delivery."""
    template = TITLES.get(event.type, event.type)
    return template.format_map(_Missing(event.data))[:500]


def render_data(event: DomainEvent) -> dict[str, Any]:
    data: dict[str, Any] = {k: event.data[k] for k in LINK_KEYS if k in event.data}
    if event.actor_id is not None:
        data["actorId"] = str(event.actor_id)
    return data


def render_account_email(event: DomainEvent, auth: AuthSettings | None) -> str:
    """The body of an account notice (``recipients.ACCOUNT_NOTICES``). A reset email carries
    the link whose token is derived here from the reset id: the secret never travels."""
    if event.type == "user.password_reset_requested":
        reset_id = data_uuid(event, "resetId")
        if auth is None or reset_id is None:
            raise ValueError("a reset email needs the auth settings and a resetId")
        minutes = auth.password_reset_ttl_s // 60
        return (
            "Someone asked to reset the password of your taskstream account.\n\n"
            f"Choose a new password here (the link works once, within {minutes} minutes):\n"
            f"{reset_link(auth, reset_id)}\n\n"
            "If it was not you, ignore this email: your password stays as it is.\n"
        )
    return (
        "The password of your taskstream account was just changed, and every other session "
        "was signed out.\n\nIf it was not you, reset your password now and tell your "
        "administrator.\n"
    )
