"""GET /tasks: full-text search (q), the new filters, the sorts and their cursors."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from taskstream.enums import TaskPriority
from taskstream.tasks.listing import TaskFilter
from tests.integration.http_support import ApiUser, join_project, register_and_login
from tests.integration.tasks.test_unstorable_input import (
    OVERFLOW_HIGH,
    OVERFLOW_LOW,
    assert_field_error,
)

SORTS = ["createdAt", "updatedAt", "deadline", "priority"]
RANK = {p.value: i for i, p in enumerate(TaskPriority)}
BASE = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass
class Row:
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    priority: str
    title: str = "A task"
    description: str | None = None
    status: str = "todo"
    created_by: str | None = None
    reviewer_id: str | None = None
    deleted: bool = False


async def insert(session_factory: Any, project_id: str, user_id: str, rows: list[Row]) -> None:
    if not rows:
        return
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO tasks (id, project_id, created_by, title, description, status,"
                " priority, deadline, reviewer_id, created_at, updated_at, deleted_at)"
                " VALUES (:id, :project_id, :created_by, :title, :description,"
                " CAST(:status AS task_status), CAST(:priority AS task_priority), :deadline,"
                " :reviewer_id, :created_at, :updated_at,"
                " CASE WHEN :deleted THEN now() END)"
            ),
            [
                {
                    "id": r.id,
                    "project_id": project_id,
                    "created_by": r.created_by or user_id,
                    "title": r.title,
                    "description": r.description,
                    "status": r.status,
                    "priority": r.priority,
                    "deadline": r.deadline,
                    "reviewer_id": r.reviewer_id,
                    "created_at": r.created_at,
                    "updated_at": r.updated_at,
                    "deleted": r.deleted,
                }
                for r in rows
            ],
        )
        await session.commit()


def row(**values: Any) -> Row:
    return Row(
        id=values.pop("id", uuid.uuid4()),
        created_at=values.pop("created_at", BASE),
        updated_at=values.pop("updated_at", BASE),
        deadline=values.pop("deadline", None),
        priority=values.pop("priority", "medium"),
        **values,
    )


async def new_project(client: Any, owner: ApiUser) -> str:
    response = await client.post("/projects", json={"name": "Search"}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def list_ids(client: Any, user: ApiUser, **params: Any) -> list[str]:
    response = await client.get("/tasks", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


async def page_through(client: Any, user: ApiUser, limit: int, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(200):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/tasks", params=query, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen += [t["id"] for t in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def expected_order(rows: list[Row], sort: str) -> list[str]:
    key = sort.removeprefix("-")

    def sort_key(r: Row) -> tuple[Any, ...]:
        if key == "createdAt":
            value: Any = (r.created_at,)
        elif key == "updatedAt":
            value = (r.updated_at,)
        elif key == "deadline":  # no deadline: as if infinitely far
            value = (r.deadline is None, r.deadline or BASE)
        else:
            value = (RANK[r.priority],)
        return (*value, r.id)

    ordered = sorted((r for r in rows if not r.deleted), key=sort_key)
    if sort.startswith("-"):
        ordered.reverse()
    return [str(r.id) for r in ordered]


# --- q ----------------------------------------------------------------------------------------


async def test_q_searches_title_and_description_with_the_other_filters(
    client, alice, bob, session_factory
):
    project = await new_project(client, alice)
    login = row(title="Login times out", description="users on android wait forever")
    deploy = row(title="Deployment script", description="the login step fails", status="done")
    other = row(title="Dark mode", description=None, priority="urgent")
    gone = row(title="Login page copy", deleted=True)
    await insert(session_factory, project, alice.id, [login, deploy, other, gone])
    await insert(
        session_factory, bob.personal_project_id, bob.id, [row(title="Login for bob only")]
    )

    async def found(**params: Any) -> set[str]:
        return set(await list_ids(client, alice, projectId=project, **params))

    assert await found(q="login") == {str(login.id), str(deploy.id)}
    assert await found(q="LOGIN") == {str(login.id), str(deploy.id)}
    assert await found(q="login", status="done") == {str(deploy.id)}
    assert await found(q="android") == {str(login.id)}  # description only
    assert await found(q='"times out"') == {str(login.id)}
    assert await found(q='"out times"') == set()
    assert await found(q="login -android") == {str(deploy.id)}
    assert await found(q="deploy* -android") == {str(deploy.id)}
    assert await found(q="login-android") == set()  # a hyphenated word, not an exclusion
    assert await found(q="android or dark") == {str(login.id), str(other.id)}
    assert await found(q="deploy*") == {str(deploy.id)}
    assert await found(q="deploy") == set()  # whole words unless marked as a prefix
    assert await found(q="dark", priority="urgent") == {str(other.id)}
    assert await found(q="nothing-like-this") == set()
    assert await found(q="") == {str(login.id), str(deploy.id), str(other.id)}
    # Without projectId: everything the caller may see, and nothing else.
    everywhere = set(await list_ids(client, alice, q="login"))
    assert everywhere == {str(login.id), str(deploy.id)}
    assert set(await list_ids(client, bob, q="login")) == set(
        await list_ids(client, bob, projectId=bob.personal_project_id, q="login")
    )
    assert not set(await list_ids(client, bob, q="login")) & everywhere


async def test_a_stranger_searching_a_foreign_project_gets_404(client, alice, bob, session_factory):
    await insert(session_factory, alice.personal_project_id, alice.id, [row(title="secret plan")])
    response = await client.get(
        "/tasks",
        params={"projectId": alice.personal_project_id, "q": "secret"},
        headers=bob.headers,
    )
    assert response.status_code == 404
    assert "secret" not in response.text
    assert await list_ids(client, bob, q="secret") == []


@pytest.mark.parametrize(
    "q",
    [
        "'",
        "it's",
        "a & b",
        "!login",
        "login:*",
        ":*",
        "fix & | ! ( ) <-> :* 'x'",
        '"unbalanced',
        "-",
        "--login",
        "login or",
        "or",
        "\\",
        "x" * 200,
        "é日本語 😀",
        "a*b* c*",
        "'a':* & 'b'",
    ],
)
async def test_hostile_q_is_answered_never_500(client, alice, q):
    response = await client.get("/tasks", params={"q": q}, headers=alice.headers)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_field_error(response, "q")


@pytest.mark.parametrize("q", ["'", ":*", "&!", "-", "()", "***", "-login", "-a -b", " -x"])
async def test_q_without_a_letter_or_digit_is_422(client, alice, q):
    response = await client.get("/tasks", params={"q": q}, headers=alice.headers)
    assert_field_error(response, "q")


@pytest.mark.parametrize("q", ["a\x00b", "x" * 201, "a* " * 9])
async def test_nul_overlong_or_too_many_prefixes_is_422(client, alice, q):
    response = await client.get("/tasks", params={"q": q}, headers=alice.headers)
    assert response.status_code == 422, response.text


async def test_any_q_text_is_200_or_422(client, alice, session_factory):
    await insert(
        session_factory,
        alice.personal_project_id,
        alice.id,
        [row(title="fix the api", description="deploy it's done")],
    )
    loop = asyncio.get_running_loop()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(q=st.text(min_size=1, max_size=60))
    def answered(q: str) -> None:
        call = client.get("/tasks", params={"q": q}, headers=alice.headers)
        response = asyncio.run_coroutine_threadsafe(call, loop).result(30)
        assert response.status_code in (200, 422), (q, response.text)

    await asyncio.to_thread(answered)


# --- the new filters --------------------------------------------------------------------------


async def test_created_by_reviewer_updated_since_and_overdue(client, alice, bob, session_factory):
    project = await new_project(client, alice)
    await join_project(client, project, alice.headers, bob.email, bob.headers)
    now = datetime.now(UTC)
    past, future = now - timedelta(days=2), now + timedelta(days=2)
    by_bob = row(created_by=bob.id, updated_at=now - timedelta(days=10))
    reviewed = row(reviewer_id=bob.id, updated_at=now - timedelta(hours=1))
    late = row(deadline=past, status="in_progress", updated_at=now - timedelta(days=3))
    late_done = row(deadline=past, status="done")
    late_cancelled = row(deadline=past, status="cancelled")
    on_time = row(deadline=future)
    late_deleted = row(deadline=past, deleted=True)
    rows = [by_bob, reviewed, late, late_done, late_cancelled, on_time, late_deleted]
    await insert(session_factory, project, alice.id, rows)

    async def found(**params: Any) -> set[str]:
        return set(await list_ids(client, alice, projectId=project, **params))

    assert await found(createdBy=bob.id) == {str(by_bob.id)}
    assert await found(reviewerId=bob.id) == {str(reviewed.id)}
    assert await found(overdue="true") == {str(late.id)}
    assert await found(overdue="false") == {str(r.id) for r in rows if not r.deleted}
    since = (now - timedelta(days=5)).isoformat()
    assert str(by_bob.id) not in await found(updatedSince=since)
    assert {str(reviewed.id), str(late.id)} <= await found(updatedSince=since)
    assert await found(updatedSince=(now - timedelta(days=2)).isoformat()) >= {str(reviewed.id)}
    assert str(late.id) not in await found(updatedSince=(now - timedelta(days=2)).isoformat())
    assert await found(overdue="true", createdBy=bob.id) == set()
    assert await found(createdBy=str(uuid.uuid4())) == set()


@pytest.mark.parametrize("since", [OVERFLOW_HIGH, OVERFLOW_LOW, "2030-01-01T00:00:00", "yesterday"])
async def test_bad_updated_since_is_4xx(client, alice, since):
    response = await client.get("/tasks", params={"updatedSince": since}, headers=alice.headers)
    assert response.status_code == 422, response.text
    # the parameter as the client wrote it, whether the parser or the range rule refused it
    assert {e["path"] for e in response.json()["errors"]} == {"updatedSince"}


@pytest.mark.parametrize(
    "params",
    [
        {"createdBy": "not-a-uuid"},
        {"reviewerId": "1"},
        {"overdue": "maybe"},
        {"sort": "title"},
        {"sort": "--createdAt"},
        {"sort": "\x00"},
    ],
)
async def test_bad_filter_or_sort_values_are_4xx(client, alice, params):
    response = await client.get("/tasks", params=params, headers=alice.headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- sorts and cursors ------------------------------------------------------------------------


async def test_each_sort_orders_with_ties_and_null_deadlines(client, alice, session_factory):
    project = await new_project(client, alice)
    t0, t1 = BASE, BASE + timedelta(hours=1)
    rows = [
        row(created_at=t0, updated_at=t1, deadline=None, priority="low"),
        row(created_at=t0, updated_at=t0, deadline=t1, priority="urgent"),
        row(created_at=t1, updated_at=t0, deadline=t0, priority="high"),
        row(created_at=t1, updated_at=t1, deadline=None, priority="medium"),
        row(created_at=t0, updated_at=t1, deadline=t1, priority="urgent"),
        row(created_at=t1, updated_at=t1, deadline=t0, priority="low", deleted=True),
    ]
    await insert(session_factory, project, alice.id, rows)
    for sort in SORTS + [f"-{s}" for s in SORTS]:
        for limit in (1, 2, 5):
            ids = await page_through(client, alice, limit, projectId=project, sort=sort)
            assert ids == expected_order(rows, sort), (sort, limit)
    urgent_first = await list_ids(client, alice, projectId=project, sort="-priority")
    assert urgent_first[:2] == sorted([str(rows[1].id), str(rows[4].id)], reverse=True)
    no_deadline_last = await list_ids(client, alice, projectId=project, sort="deadline")
    assert set(no_deadline_last[-2:]) == {str(rows[0].id), str(rows[3].id)}


async def test_every_sort_pages_each_task_exactly_once(client, session_factory):
    """Property: whatever the ties, nulls and page size, paging yields the sort exactly."""
    user = await register_and_login(client, "Pager")
    project = await new_project(client, user)
    loop = asyncio.get_running_loop()
    instants = st.sampled_from([BASE, BASE + timedelta(minutes=1), BASE + timedelta(days=1)])
    task = st.builds(
        row,
        created_at=instants,
        updated_at=instants,
        deadline=st.none() | instants,
        priority=st.sampled_from([p.value for p in TaskPriority]),
        deleted=st.booleans(),
    )

    async def check(rows: list[Row], sort: str, limit: int) -> None:
        async with session_factory() as session:
            await session.execute(text("DELETE FROM tasks WHERE project_id = :p"), {"p": project})
            await session.commit()
        await insert(session_factory, project, user.id, rows)
        ids = await page_through(client, user, limit, projectId=project, sort=sort)
        assert ids == expected_order(rows, sort)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        rows=st.lists(task, max_size=12),
        sort=st.sampled_from(SORTS + [f"-{s}" for s in SORTS]),
        limit=st.integers(1, 4),
    )
    def pages_exactly(rows: list[Row], sort: str, limit: int) -> None:
        asyncio.run_coroutine_threadsafe(check(rows, sort, limit), loop).result(60)

    await asyncio.to_thread(pages_exactly)


async def test_search_results_page_through_every_sort(client, alice, session_factory):
    project = await new_project(client, alice)
    rows = [
        row(
            title=f"export report {i}" if i % 2 else f"import {i}",
            created_at=BASE + timedelta(minutes=i % 3),
            updated_at=BASE + timedelta(minutes=i % 4),
            deadline=None if i % 3 == 0 else BASE + timedelta(days=i % 2),
            priority=list(TaskPriority)[i % 4].value,
        )
        for i in range(14)
    ]
    await insert(session_factory, project, alice.id, rows)
    matching = [r for r in rows if r.title.startswith("export")]
    for sort in SORTS + [f"-{s}" for s in SORTS]:
        ids = await page_through(client, alice, 3, projectId=project, sort=sort, q="report")
        assert ids == expected_order(matching, sort), sort


def forge(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_a_cursor_only_works_with_its_sort_and_filters(client, alice, session_factory):
    project = await new_project(client, alice)
    await insert(
        session_factory,
        project,
        alice.id,
        [row(title="alpha beta", created_at=BASE + timedelta(seconds=i)) for i in range(3)],
    )
    first = await client.get(
        "/tasks",
        params={"projectId": project, "limit": 1, "sort": "deadline", "q": "alpha"},
        headers=alice.headers,
    )
    cursor = first.json()["nextCursor"]
    assert cursor
    same = {"projectId": project, "limit": 1, "q": "alpha", "cursor": cursor}
    ok = await client.get("/tasks", params={**same, "sort": "deadline"}, headers=alice.headers)
    assert ok.status_code == 200
    for changed in (
        {"sort": "-deadline"},
        {"sort": "createdAt"},
        {},  # the default sort, createdAt
        {"sort": "deadline", "q": "beta"},
        {"sort": "deadline", "status": "todo"},
        {"sort": "deadline", "overdue": "true"},
    ):
        response = await client.get("/tasks", params={**same, **changed}, headers=alice.headers)
        assert_field_error(response, "cursor")
    without_project = {k: v for k, v in same.items() if k != "projectId"}
    response = await client.get(
        "/tasks", params={**without_project, "sort": "deadline"}, headers=alice.headers
    )
    assert_field_error(response, "cursor")


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("createdAt", None),
        ("createdAt", OVERFLOW_HIGH),
        ("createdAt", "not a date"),
        ("deadline", OVERFLOW_LOW),
        ("priority", "critical"),
        ("priority", None),
        ("priority", 3),
        ("updatedAt", "2030-01-01T00:00:00"),
    ],
)
async def test_forged_cursor_values_are_422(client, alice, sort, value):
    # The right sort and the digest of "no filters", with a value encode_cursor cannot produce.
    cursor = forge([sort, TaskFilter().digest(), value, str(uuid.uuid4())])
    response = await client.get(
        "/tasks", params={"sort": sort, "cursor": cursor}, headers=alice.headers
    )
    assert_field_error(response, "cursor")


async def test_null_deadlines_page_by_id_in_the_deadline_sort(client, alice, session_factory):
    """A null deadline is a valid position in the deadline sort (it is 'infinity')."""
    project = await new_project(client, alice)
    rows = [row(deadline=None, created_at=BASE + timedelta(seconds=i)) for i in range(3)]
    await insert(session_factory, project, alice.id, rows)
    ids = await page_through(client, alice, 1, projectId=project, sort="deadline")
    assert ids == sorted(str(r.id) for r in rows)
