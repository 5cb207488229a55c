"""The hot-path caches of user status and project roles: one query per key however many
requests miss at once, refusals never cached (the loaders are replaced; no database)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from taskstream.auth.user_status import UserStatus, UserStatusCache
from taskstream.enums import ProjectRole, UserRole
from taskstream.errors import ForbiddenError, NotFoundError, ProjectArchivedError
from taskstream.principal import Principal
from taskstream.projects.access import ProjectAccessCache

ALICE = Principal(user_id=uuid.uuid4(), role=UserRole.MEMBER)


class CountingAccess(ProjectAccessCache):
    def __init__(self, roles: dict[uuid.UUID, ProjectRole]) -> None:
        self.roles = roles
        self.archived: set[uuid.UUID] = set()
        self.loads = 0
        super().__init__(session_factory=None)  # type: ignore[arg-type]

    async def _load_role(self, principal: Principal, project_id: uuid.UUID) -> ProjectRole:
        self.loads += 1
        await asyncio.sleep(0.01)  # a query in flight while the other requests arrive
        if project_id not in self.roles:
            raise NotFoundError("Project not found")
        return self.roles[project_id]

    async def _load_archived(self, project_id: uuid.UUID) -> bool:
        return project_id in self.archived


class CountingStatus(UserStatusCache):
    def __init__(self) -> None:
        self.loads = 0
        super().__init__(session_factory=None)  # type: ignore[arg-type]

    async def _load(self, user_id: uuid.UUID) -> UserStatus | None:
        self.loads += 1
        await asyncio.sleep(0.01)
        return UserStatus(UserRole.MEMBER, token_version=0)


async def test_concurrent_misses_share_one_role_query() -> None:
    project = uuid.uuid4()
    access = CountingAccess({project: ProjectRole.MEMBER})
    roles = await asyncio.gather(
        *(access.role(ALICE, project, ProjectRole.MEMBER) for _ in range(50))
    )
    assert roles == [ProjectRole.MEMBER] * 50
    assert access.loads == 1
    await access.role(ALICE, project, ProjectRole.VIEWER)
    assert access.loads == 1  # answered from memory
    await access.close()


async def test_role_below_minimum_is_forbidden_and_non_members_are_rechecked() -> None:
    project, elsewhere = uuid.uuid4(), uuid.uuid4()
    access = CountingAccess({project: ProjectRole.VIEWER})
    with pytest.raises(ForbiddenError):
        await access.role(ALICE, project, ProjectRole.MEMBER)
    for _ in range(2):
        with pytest.raises(NotFoundError):
            await access.role(ALICE, elsewhere, ProjectRole.VIEWER)
    assert access.loads == 3  # one for the member, and each refusal asked again
    access.roles[elsewhere] = ProjectRole.OWNER  # added as a member: seen at once
    assert await access.role(ALICE, elsewhere, ProjectRole.OWNER) is ProjectRole.OWNER
    await access.close()


async def test_an_archived_project_refuses_until_forgotten_and_unarchived() -> None:
    project = uuid.uuid4()
    access = CountingAccess({project: ProjectRole.OWNER})
    assert await access.role(ALICE, project, ProjectRole.MEMBER) is ProjectRole.OWNER
    access.archived.add(project)
    # cached as live until this process forgets it (other processes: until the entry expires)
    assert await access.role(ALICE, project, ProjectRole.MEMBER) is ProjectRole.OWNER
    access.forget_project(project)
    with pytest.raises(ProjectArchivedError):
        await access.role(ALICE, project, ProjectRole.MEMBER)
    access.archived.discard(project)
    access.forget_project(project)
    assert await access.role(ALICE, project, ProjectRole.MEMBER) is ProjectRole.OWNER
    await access.close()


async def test_concurrent_misses_share_one_user_status_query() -> None:
    statuses = CountingStatus()
    users = [uuid.uuid4(), uuid.uuid4()]
    results = await asyncio.gather(*(statuses.active_role(users[i % 2]) for i in range(40)))
    assert set(results) == {UserRole.MEMBER}
    assert statuses.loads == 2
    await statuses.close()
