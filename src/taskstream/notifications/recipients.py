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
# Users a task.commented event leaves out: they have their own task.mentioned event.
MENTIONED_IDS = "mentionedIds"

# Account notices: an email to the user the event is about (``userId``) and nobody else, even
# when they did it themselves; never in-app, never webhooks (no project), and preferences
# cannot switch them off. A reset request carries only the reset id: the email renderer
# derives the link's token from it (``auth.reset_tokens``).
ACCOUNT_NOTICES: Final = frozenset({"user.password_changed", "user.password_reset_requested"})

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
    # The author is the actor, so never told; a mentioned user hears through task.mentioned.
    "task.commented": (ASSIGNEE, REVIEWER, CREATOR),
    "task.mentioned": (SUBJECT_USER,),
    "task.comment_edited": (),
    "task.comment_deleted": (),
    "user.password_changed": (SUBJECT_USER,),
    "user.password_reset_requested": (SUBJECT_USER,),
    "project.updated": (),
    "project.archived": (MANAGERS,),
    "project.unarchived": (MANAGERS,),
    "project.deleted": (MANAGERS,),
    "project.restored": (MANAGERS,),
    # the new owner (userId); the previous owner acted or is told by managers' view
    "project.ownership_transferred": (SUBJECT_USER, MANAGERS),
    "project.member_role_changed": (SUBJECT_USER,),
    # only emitted when the invited address belongs to a user (userId)
    "project.member_invited": (SUBJECT_USER,),
    # the processing consumer is the actor (none): the uploader hears too
    "attachment.ready": (UPLOADER, ASSIGNEE, REVIEWER, CREATOR),
    "attachment.quarantined": (UPLOADER, ASSIGNEE, REVIEWER, CREATOR),
    "attachment.failed": (UPLOADER,),
    # no longer a member, so told nothing in-app about the project; webhooks and audit only
    "project.member_removed": (),
}

# Channel defaults when a user has no explicit preference row. In-app is on for everything a
# user is a recipient of; email only for what asks the user to act.
DEFAULTS: Final[dict[NotificationChannel, frozenset[str]]] = {
    NotificationChannel.IN_APP: frozenset(EVENT_TYPES)
    - {"user.created", "project.created"}
    - ACCOUNT_NOTICES,
    NotificationChannel.EMAIL: frozenset(
        {
            "user.created",
            "project.member_added",
            "project.member_invited",
            "task.assigned",
            "task.review_requested",
            "task.overdue",
            "task.mentioned",
            *ACCOUNT_NOTICES,
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
    if event.actor_id is not None and event.type not in ACCOUNT_NOTICES:
        people.discard(event.actor_id)
    # a comment's mentioned members are told once, by its task.mentioned event
    people.difference_update(_uuids(event.data.get(MENTIONED_IDS)))
    return people


def _uuids(values: object) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for value in values if isinstance(values, list) else ():
        try:
            found.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found


def wants(
    preferences: Mapping[tuple[uuid.UUID, str], bool],
    user_id: uuid.UUID,
    event_type: str,
    channel: NotificationChannel,
) -> bool:
    """The user's explicit choice for (event type, channel), else the channel default;
    account notices always by email only."""
    if event_type in ACCOUNT_NOTICES:
        return channel is NotificationChannel.EMAIL
    explicit = preferences.get((user_id, event_type))
    if explicit is not None:
        return explicit
    return event_type in DEFAULTS.get(channel, frozenset())


def notification_id(
    event_id: uuid.UUID, recipient: uuid.UUID, channel: NotificationChannel
) -> uuid.UUID:
    """Deterministic per (event, recipient, channel): a redelivery maps to the same row."""
    return uuid.uuid5(event_id, f"{recipient}:{channel.value}")
