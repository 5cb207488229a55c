"""Another API process's cache learns of an archive through Redis, not only when its entry
expires: two caches stand for two processes, the second with its own listener."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from taskstream.enums import ProjectRole, UserRole
from taskstream.errors import ProjectArchivedError
from taskstream.principal import Principal
from taskstream.projects.access import ProjectAccessCache
from taskstream.projects.lifecycle_feed import LifecycleListener
from taskstream.settings import Settings
from tests.integration.projects.conftest import Team


async def test_an_archive_reaches_the_cache_of_another_process(
    client, team: Team, session_factory, api_settings: Settings
):
    other = ProjectAccessCache(session_factory)
    project_id = uuid.UUID(team.project_id)
    subscribed, forgotten = asyncio.Event(), asyncio.Event()

    def seen(forgot: uuid.UUID | None) -> None:
        if forgot is None:
            subscribed.set()
        elif forgot == project_id:
            forgotten.set()

    listener = LifecycleListener(api_settings.redis.url, other, on_forget=seen)
    listener.start()
    member = Principal(user_id=uuid.UUID(team.member.id), role=UserRole.MEMBER)
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        # the other process has the project cached as open
        assert await other.role(member, project_id, ProjectRole.MEMBER) is ProjectRole.MEMBER
        archived = await client.post(
            f"/projects/{team.project_id}/archive", headers=team.owner.headers
        )
        assert archived.status_code == 200
        await asyncio.wait_for(forgotten.wait(), 10)
        with pytest.raises(ProjectArchivedError):
            await other.role(member, project_id, ProjectRole.MEMBER)
        forgotten.clear()
        unarchived = await client.post(
            f"/projects/{team.project_id}/unarchive", headers=team.owner.headers
        )
        assert unarchived.status_code == 200
        await asyncio.wait_for(forgotten.wait(), 10)
        assert await other.role(member, project_id, ProjectRole.MEMBER) is ProjectRole.MEMBER
    finally:
        await listener.close()
        await other.close()
