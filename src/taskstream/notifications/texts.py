"""What a notification says: one title per event type, plus the small data a client links on."""

from __future__ import annotations

from typing import Any, Final

from taskstream.messages import DomainEvent

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
    "attachment.ready": "Attachment ready: {name}",
    "attachment.quarantined": "Attachment quarantined (infected): {name}",
    "attachment.failed": "Attachment failed: {name}",
}

LINK_KEYS: Final = (
    "taskId",
    "projectId",
    "status",
    "assigneeId",
    "reviewerId",
    "userId",
    "role",
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
