"""Ownership changes racing other member changes, against the served app: whatever the order
in which PostgreSQL lets them through, the project's designated owner stays a member with the
owner role, and a caller acts with the role they hold when their change is applied.

Each test holds a row lock from outside (a plain transaction) so that both requests are in
flight at the same moment, sends them one after the other once PostgreSQL reports the earlier
ones waiting, then lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import httpx
from sqlalchemy import text

from tests.integration.http_support import ApiUser
from tests.integration.projects.conftest import Team, make_team

WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND state = 'active' AND wait_event_type = 'Lock'"
)


async def _race_behind_lock(
    session_factory: Any, lock_sql: str, params: dict[str, str], *requests: Awaitable[Any]
) -> list[httpx.Response]:
    """Run ``requests`` while ``lock_sql`` holds a row lock, each one sent once the ones
    before it are queued behind a lock (so they reach the database in this order); release
    the lock once all are queued."""
    tasks: list[asyncio.Future[Any]] = []
    async with session_factory() as holder:
        await holder.execute(text(lock_sql), params)
        async with session_factory() as probe:
            for request in requests:
                tasks.append(asyncio.ensure_future(request))
                for _ in range(500):
                    waiting = (await probe.execute(WAITING)).scalar_one()
                    await probe.rollback()  # pg_stat_activity is a snapshot per transaction
                    if waiting >= len(tasks):
                        break
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError(f"request {len(tasks)} never waited for the lock")
        await holder.rollback()
    return list(await asyncio.gather(*tasks))


async def _members(served: httpx.AsyncClient, team: Team, who: ApiUser) -> dict[str, str]:
    listing = await served.get(f"/projects/{team.project_id}/members", headers=who.headers)
    assert listing.status_code == 200, listing.text
    return {m["userId"]: m["role"] for m in listing.json()["items"]}


async def _owner_id(served: httpx.AsyncClient, team: Team, who: ApiUser) -> str:
    project = await served.get(f"/projects/{team.project_id}", headers=who.headers)
    assert project.status_code == 200, project.text
    return str(project.json()["ownerId"])


async def _make_co_owner(served: httpx.AsyncClient, team: Team, user: ApiUser) -> None:
    promoted = await served.patch(
        f"/projects/{team.project_id}/members/{user.id}",
        json={"role": "owner"},
        headers=team.owner.headers,
    )
    assert promoted.status_code == 200, promoted.text


async def test_removing_the_new_owner_during_a_transfer_keeps_an_owning_member(
    served: httpx.AsyncClient, session_factory
):
    team = await make_team(served, "Transfer vs removal")
    await _make_co_owner(served, team, team.member)  # a second owner, who may remove others
    transfer = served.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.maintainer.id},
        headers=team.owner.headers,
    )
    removal = served.delete(
        f"/projects/{team.project_id}/members/{team.maintainer.id}",
        headers=team.member.headers,
    )
    transferred, removed = await _race_behind_lock(
        session_factory,
        "SELECT 1 FROM project_members WHERE project_id = :p AND user_id = :u FOR UPDATE",
        {"p": team.project_id, "u": team.maintainer.id},
        transfer,
        removal,
    )
    assert transferred.status_code < 500 and removed.status_code < 500
    owner_id = await _owner_id(served, team, team.member)
    roles = await _members(served, team, team.member)
    assert roles.get(owner_id) == "owner", (transferred.text, removed.text, roles)


async def test_an_owner_who_transfers_cannot_then_demote_a_co_owner(
    served: httpx.AsyncClient, session_factory
):
    team = await make_team(served, "Transfer vs demotion")
    await _make_co_owner(served, team, team.member)
    transfer = served.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.maintainer.id},
        headers=team.owner.headers,
    )
    demotion = served.patch(
        f"/projects/{team.project_id}/members/{team.member.id}",
        json={"role": "viewer"},
        headers=team.owner.headers,
    )
    transferred, demoted = await _race_behind_lock(
        session_factory,
        "SELECT 1 FROM project_members WHERE project_id = :p AND user_id = :u FOR UPDATE",
        {"p": team.project_id, "u": team.maintainer.id},
        transfer,
        demotion,
    )
    assert transferred.status_code == 200, transferred.text
    # the transfer made the caller a maintainer before the demotion was applied: a maintainer
    # does not change an owner
    assert demoted.status_code == 403, demoted.text
    roles = await _members(served, team, team.member)
    assert roles[team.member.id] == "owner"
    assert roles[team.owner.id] == "maintainer"


async def test_two_transfers_at_once_leave_one_owner_chosen_by_an_owner(
    served: httpx.AsyncClient, session_factory
):
    team = await make_team(served, "Two transfers")
    first = served.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.maintainer.id},
        headers=team.owner.headers,
    )
    second = served.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.viewer.id},
        headers=team.owner.headers,
    )
    results = await _race_behind_lock(
        session_factory,
        "SELECT 1 FROM project_members WHERE project_id = :p AND user_id IN (:a, :b) FOR UPDATE",
        {"p": team.project_id, "a": team.maintainer.id, "b": team.viewer.id},
        first,
        second,
    )
    assert sorted(r.status_code for r in results) == [200, 403], [r.text for r in results]
    roles = await _members(served, team, team.member)
    assert list(roles.values()).count("owner") == 1
