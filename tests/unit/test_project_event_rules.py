"""Who hears about the project management events, and on which channels by default."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from taskstream.enums import NotificationChannel
from taskstream.messages import DomainEvent
from taskstream.notifications.recipients import candidate_recipients, wants
from taskstream.notifications.texts import render_data, render_title

OWNER, INVITEE = uuid.uuid4(), uuid.uuid4()


def _event(event_type: str, data: dict[str, str]) -> DomainEvent:
    project = uuid.uuid4()
    return DomainEvent(
        event_id=uuid.uuid4(),
        type=event_type,
        occurred_at=datetime.now(UTC),
        aggregate_id=project,
        actor_id=OWNER,
        project_id=project,
        data={"projectId": str(project), **data},
    )


def test_an_invited_user_hears_in_app_and_by_email_with_the_invitation_id() -> None:
    invitation = str(uuid.uuid4())
    event = _event(
        "project.member_invited",
        {"invitationId": invitation, "userId": str(INVITEE), "role": "member", "projectName": "X"},
    )
    assert candidate_recipients(event, managers={OWNER}) == {INVITEE}
    for channel in (NotificationChannel.IN_APP, NotificationChannel.EMAIL):
        assert wants({}, INVITEE, event.type, channel)
    assert render_title(event) == "You are invited to X as member"
    assert render_data(event)["invitationId"] == invitation


def test_a_re_ranked_member_and_a_new_owner_hear_about_it() -> None:
    changed = _event("project.member_role_changed", {"userId": str(INVITEE), "role": "viewer"})
    assert candidate_recipients(changed, managers={OWNER}) == {INVITEE}
    transferred = _event("project.ownership_transferred", {"userId": str(INVITEE)})
    assert candidate_recipients(transferred, managers={OWNER, INVITEE}) == {INVITEE}
