"""Who hears about an event, and on which channels: pure rules, no I/O.

Recipients per event type come from the task's people (assignee, reviewer, creator, the previous
assignee) and the project's managers (owners and maintainers). The actor never hears about what
they did themselves. User preferences then switch channels on or off per event type.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Final

from taskstream.enums import NotificationChannel
from taskstream.messages import EVENT_TYPES, DomainEvent
from taskstream.notifications.events import data_uuid

# Roles named in RULES: keys of the event ``data`` or the project's managers.
ASSIGNEE = "assigneeId"
REVIEWER = "reviewerId"
CREATOR = "createdBy"
PREVIOUS_ASSIGNEE = "previousAssigneeId"
SUBJECT_USER = "userId"  # project.member_added / user.created
UPLOADER = "uploaderId"  # attachment.*
MANAGERS = "managers"

RULES: Final[dict[str, tuple[str, ...]]] = {
    "user.created": (SUBJECT_USER,),
    "project.created": (),
    "project.member_added": (SUBJECT_USER,),
    # A create with an assignee also emits task.assigned, which tells the assignee.
    "task.created": (REVIEWER, MANAGERS),
    "task.updated": (ASSIGNEE, REVIEWER),
    "task.assigned": (ASSIGNEE, PREVIOUS_ASSIGNEE, REVIEWER),
    "task.status_changed": (ASSIGNEE, REVIEWER, CREATOR),
    "task.review_requested": (REVIEWER,),
    "task.reviewed": (ASSIGNEE, CREATOR),
    "task.completed": (ASSIGNEE, REVIEWER, CREATOR, MANAGERS),
    "task.deleted": (ASSIGNEE, REVIEWER, CREATOR),
    "task.overdue": (ASSIGNEE, MANAGERS),
    # the processing consumer is the actor (none): the uploader hears too
    "attachment.ready": (UPLOADER, ASSIGNEE, REVIEWER, CREATOR),
    "attachment.quarantined": (UPLOADER, ASSIGNEE, REVIEWER, CREATOR),
    "attachment.failed": (UPLOADER,),
}

# Channel defaults when a user has no explicit preference row. In-app is on for everything a
# user is a recipient of; email only for what asks the user to act.
DEFAULTS: Final[dict[NotificationChannel, frozenset[str]]] = {
    NotificationChannel.IN_APP: frozenset(EVENT_TYPES) - {"user.created", "project.created"},
    NotificationChannel.EMAIL: frozenset(
        {
            "user.created",
            "project.member_added",
            "task.assigned",
            "task.review_requested",
            "task.overdue",
        }
    ),
}
USER_CHANNELS: Final = (NotificationChannel.IN_APP, NotificationChannel.EMAIL)


def candidate_recipients(event: DomainEvent, managers: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Everyone the event concerns by role, without the actor."""
    people: set[uuid.UUID] = set()
    for role in RULES.get(event.type, ()):
        if role == MANAGERS:
            people.update(managers)
        elif (user_id := data_uuid(event, role)) is not None:
            people.add(user_id)
    if event.actor_id is not None:
        people.discard(event.actor_id)
    return people


def wants(
    preferences: Mapping[tuple[uuid.UUID, str], bool],
    user_id: uuid.UUID,
    event_type: str,
    channel: NotificationChannel,
) -> bool:
    """The user's explicit choice for (event type, channel), else the channel default."""
    explicit = preferences.get((user_id, event_type))
    if explicit is not None:
        return explicit
    return event_type in DEFAULTS.get(channel, frozenset())


def notification_id(
    event_id: uuid.UUID, recipient: uuid.UUID, channel: NotificationChannel
) -> uuid.UUID:
    """Deterministic per (event, recipient, channel): a redelivery maps to the same row."""
    return uuid.uuid5(event_id, f"{recipient}:{channel.value}")
