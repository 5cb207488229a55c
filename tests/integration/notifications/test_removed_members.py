"""Task notifications reach only people who are members of the project when they go out."""

from __future__ import annotations

from taskstream.db import transaction
from taskstream.enums import NotificationChannel, UserRole
from taskstream.models import EmailDelivery
from taskstream.notifications.email import Mailer, deliver_email
from taskstream.notifications.service import deliver_in_app, resolve_recipients
from taskstream.principal import Principal
from taskstream.projects.members import remove_member
from tests.integration.notifications.conftest import (
    SmtpSink,
    Team,
    notifications_of,
    task_event,
)


async def _remove(session_factory, team: Team, user_id) -> None:
    owner = Principal(user_id=team.owner, role=UserRole.MEMBER)
    async with transaction(session_factory) as session:
        await remove_member(session, owner, team.project_id, user_id)


async def test_a_removed_member_gets_no_in_app_notification(session_factory, team: Team):
    await _remove(session_factory, team, team.alice)
    # alice created the task and is still named its assignee; bob reviews it
    event = task_event(
        team,
        "task.status_changed",
        actor=team.maintainer,
        assignee=team.alice,
        reviewer=team.bob,
        created_by=team.alice,
    )
    async with transaction(session_factory) as session:
        await deliver_in_app(session, [event])
    users = {user for user, _, _ in await notifications_of(session_factory, [event.event_id])}
    assert users == {team.bob}


async def test_a_removed_member_gets_no_email(
    session_factory, team: Team, smtp_sink: SmtpSink, settings
):
    await _remove(session_factory, team, team.alice)
    event = task_event(
        team, "task.assigned", actor=team.owner, assignee=team.alice, reviewer=team.bob
    )
    mailer = Mailer(smtp_sink.settings_for(settings).smtp)
    try:
        sent = await deliver_email(session_factory, mailer, event)
    finally:
        await mailer.close()
    assert sent == 1
    assert [rcpt for _, rcpt, _ in smtp_sink.mailbox.messages] == [[team.emails[team.bob]]]
    async with session_factory() as session:
        rows = (
            await session.execute(
                EmailDelivery.__table__.select().where(EmailDelivery.event_id == event.event_id)
            )
        ).all()
    assert [r.user_id for r in rows] == [team.bob]


async def test_managers_who_left_are_not_told_either(session_factory, team: Team):
    async with transaction(session_factory) as session:
        maintainer = Principal(user_id=team.maintainer, role=UserRole.MEMBER)
        await remove_member(session, maintainer, team.project_id, team.maintainer)  # leaves
    event = task_event(team, "task.completed", actor=team.bob, assignee=team.alice)
    async with session_factory() as session:
        recipients = await resolve_recipients(session, [event], NotificationChannel.IN_APP)
    assert {r.user_id for r in recipients[event.event_id]} == {team.owner, team.alice}
