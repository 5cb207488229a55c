"""What PostgreSQL (or Python, after conversion to UTC) cannot store is refused at the edge:
NUL characters, datetimes outside the representable range, absurd nesting. Each answer is
problem+json with a field path, and nothing is written or published."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.integration.http_support import PASSWORD, ApiUser, read_commands, register_and_login
from tests.integration.web.test_bad_input import assert_problem

NUL = "a\u0000b"
# Valid ISO 8601 with an offset, but outside datetime's range once converted to UTC.
OVERFLOW_HIGH = "9999-12-31T23:00:00-05:00"
OVERFLOW_LOW = "0001-01-01T00:00:00+05:00"


def assert_field_error(response, path: str) -> dict:
    problem = assert_problem(response, 422, "validation-error")
    assert path in [e["path"] for e in problem["errors"]], problem
    return problem


async def count(session_factory, sql: str, **params) -> int:
    async with session_factory() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


# --- NUL in anything that reaches PostgreSQL ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": NUL}, "name"),
        ({"name": "ok", "description": NUL}, "description"),
    ],
)
async def test_nul_in_a_project_is_422_and_no_project_is_created(
    client, alice: ApiUser, session_factory, body, path
):
    response = await client.post("/projects", json=body, headers=alice.headers)
    assert_field_error(response, path)
    owned = "SELECT count(*) FROM projects WHERE owner_id = CAST(:owner AS uuid)"
    assert await count(session_factory, owned, owner=alice.id) == 1  # only the personal one


@pytest.mark.parametrize("field", ["name", "email", "password"])
async def test_nul_in_registration_is_422_and_no_user_is_created(client, session_factory, field):
    email = f"nul-{uuid.uuid4().hex[:10]}@example.com"
    body = {"name": "Nul", "email": email, "password": PASSWORD, field: NUL}
    response = await client.post("/auth/register", json=body)
    assert_field_error(response, field)
    users = "SELECT count(*) FROM users WHERE email IN (:email, :nul)"
    assert await count(session_factory, users, email=email, nul=NUL.replace("\0", "")) == 0


@pytest.mark.parametrize("field", ["email", "password"])
async def test_nul_in_login_is_422(client, alice: ApiUser, field):
    body = {"email": alice.email, "password": PASSWORD, field: NUL}
    assert_field_error(await client.post("/auth/login", json=body), field)


async def test_nul_in_refresh_and_logout_tokens_is_422(client, alice: ApiUser):
    assert_field_error(
        await client.post("/auth/refresh", json={"refreshToken": NUL}), "refreshToken"
    )
    response = await client.post("/auth/logout", json={"refreshToken": NUL}, headers=alice.headers)
    assert_field_error(response, "refreshToken")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"url": "https://example.com/\u0000hook", "events": ["*"], "secret": "s" * 16}, "url"),
        ({"url": "https://example.com/hook", "events": ["*"], "secret": "s" * 15 + NUL}, "secret"),
        ({"url": "https://example.com/hook", "events": [NUL], "secret": "s" * 16}, "events[0]"),
    ],
)
async def test_nul_in_a_webhook_is_422_and_nothing_is_subscribed(
    client, alice: ApiUser, session_factory, body, path
):
    project = alice.personal_project_id
    response = await client.post(f"/projects/{project}/webhooks", json=body, headers=alice.headers)
    assert_field_error(response, path)
    hooks = "SELECT count(*) FROM webhook_subscriptions WHERE project_id = CAST(:p AS uuid)"
    assert await count(session_factory, hooks, p=project) == 0


async def test_nul_in_notification_preferences_is_422(client, alice: ApiUser):
    body = {"items": [{"eventType": NUL, "channel": "email", "enabled": False}]}
    response = await client.put(
        "/users/me/notification-preferences", json=body, headers=alice.headers
    )
    assert_field_error(response, "items[0].eventType")


# --- task commands: refused synchronously, nothing reaches the topic -------------------------


async def _existing_task(client, user: ApiUser) -> str:
    created = await client.post("/tasks", json={"title": "fine"}, headers=user.headers)
    assert created.status_code == 202, created.text
    return created.json()["taskId"]


def _bad_task_commands(task_id: str) -> list[tuple[str, str, dict, str]]:
    """(method, path, body, field path) of every task command with an unstorable value."""
    return [
        ("POST", "/tasks", {"title": NUL}, "title"),
        ("POST", "/tasks", {"title": "x", "description": NUL}, "description"),
        ("POST", "/tasks", {"title": "x", "deadline": OVERFLOW_HIGH}, "deadline"),
        ("POST", "/tasks", {"title": "x", "deadline": OVERFLOW_LOW}, "deadline"),
        ("POST", "/tasks", {"title": " \t\u00a0\u2003 "}, "title"),
        ("POST", "/tasks/batch", {"tasks": [{"title": "ok"}, {"title": NUL}]}, "tasks[1].title"),
        (
            "POST",
            "/tasks/batch",
            {"tasks": [{"title": "ok", "deadline": OVERFLOW_HIGH}]},
            "tasks[0].deadline",
        ),
        ("PATCH", f"/tasks/{task_id}", {"title": NUL}, "title"),
        ("PATCH", f"/tasks/{task_id}", {"title": "   "}, "title"),
        ("PATCH", f"/tasks/{task_id}", {"description": NUL}, "description"),
        ("PATCH", f"/tasks/{task_id}", {"deadline": OVERFLOW_HIGH}, "deadline"),
        ("PATCH", f"/tasks/{task_id}", {"deadline": OVERFLOW_LOW}, "deadline"),
        ("POST", f"/tasks/{task_id}/reviews", {"verdict": "approve", "comment": NUL}, "comment"),
    ]


async def test_unstorable_task_commands_are_422_and_nothing_is_published(
    client, alice: ApiUser, api_settings
):
    task_id = await _existing_task(client, alice)
    accepted = []
    for method, path, body, field in _bad_task_commands(task_id):
        response = await client.request(method, path, json=body, headers=alice.headers)
        if response.status_code == 202:
            accepted.append((method, path, body))
            continue
        assert_field_error(response, field)
    assert accepted == []
    published = await read_commands(api_settings, set(), timeout_s=20, collect_all=True)
    mine = [c for _, c, _ in published.values() if str(c.actor.user_id) == alice.id]
    assert [c.task_id for c in mine] == [uuid.UUID(task_id)]  # only the fine create


async def test_datetimes_at_the_edges_of_the_range_are_accepted(client, alice: ApiUser):
    for deadline in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00-05:00"):
        response = await client.post(
            "/tasks", json={"title": "edge", "deadline": deadline}, headers=alice.headers
        )
        assert response.status_code == 202, (deadline, response.text)


async def test_emoji_and_astral_characters_are_accepted(client, alice: ApiUser, session_factory):
    name = "🚀 Ünïcødé \U0001d518 漢字"
    created = await client.post(
        "/projects", json={"name": name, "description": "🙂" * 100}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    task = await client.post("/tasks", json={"title": "\U0001d518🚀"}, headers=alice.headers)
    assert task.status_code == 202, task.text


async def test_assignee_outside_the_project_is_422_synchronously(
    client, alice: ApiUser, bob: ApiUser, api_settings
):
    task_id = await _existing_task(client, alice)
    stranger = str(uuid.uuid4())
    refused = [
        ("POST", "/tasks", {"title": "x", "assigneeId": bob.id}, "assigneeId"),
        ("POST", "/tasks", {"title": "x", "assigneeId": stranger}, "assigneeId"),
        ("POST", "/tasks/batch", {"tasks": [{"title": "x", "assigneeId": bob.id}]}, None),
        ("POST", f"/tasks/{task_id}/assign", {"assigneeId": bob.id}, "assigneeId"),
        ("POST", f"/tasks/{task_id}/assign", {"assigneeId": None, "reviewerId": bob.id}, None),
        ("POST", f"/tasks/{task_id}/transition", {"to": "in_review", "reviewerId": bob.id}, None),
    ]
    for method, path, body, field in refused:
        response = await client.request(method, path, json=body, headers=alice.headers)
        problem = assert_problem(response, 422, "validation-error")
        if field:
            assert [e["path"] for e in problem["errors"]] == [field], problem
    # a member of the project (here: alice herself) is accepted
    ok = await client.post(
        f"/tasks/{task_id}/assign", json={"assigneeId": alice.id}, headers=alice.headers
    )
    assert ok.status_code == 202, ok.text
    published = await read_commands(api_settings, set(), timeout_s=20, collect_all=True)
    mine = [c for _, c, _ in published.values() if str(c.actor.user_id) == alice.id]
    assert len(mine) == 2  # the create and the good assignment


# --- nesting depth ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
async def test_deeply_nested_json_is_400(client, alice: ApiUser, depth):
    body = b"[" * depth + b"]" * depth
    login = await client.post(
        "/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(login, 400, "bad-request")
    unclosed = b'{"title": ' + b"[" * depth
    task = await client.post(
        "/tasks", content=unclosed, headers={**alice.headers, "content-type": "application/json"}
    )
    assert_problem(task, 400, "bad-request")


async def test_nesting_inside_a_field_is_400(client, alice: ApiUser):
    deep = {"title": "x"}
    node: dict = deep
    for _ in range(200):
        node["nested"] = {}
        node = node["nested"]
    response = await client.post("/tasks", json=deep, headers=alice.headers)
    assert_problem(response, 400, "bad-request")


async def test_lone_surrogate_escapes_are_400(client, alice: ApiUser):
    for escaped in (b'"\\ud800"', b'"\\udc00x"'):
        response = await client.post(
            "/projects",
            content=b'{"name": ' + escaped + b"}",
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert_problem(response, 400, "bad-request")


# --- query parameters and cursors ------------------------------------------------------------


@pytest.mark.parametrize("due", [OVERFLOW_HIGH, OVERFLOW_LOW, "2030-01-01T00:00:00"])
async def test_unrepresentable_due_before_is_422(client, alice: ApiUser, due):
    response = await client.get("/tasks", params={"dueBefore": due}, headers=alice.headers)
    assert_field_error(response, "dueBefore")


def _cursor(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(f'["{OVERFLOW_HIGH}","{uuid.uuid4()}"]'.encode()),
        _cursor(f'["{OVERFLOW_LOW}","{uuid.uuid4()}"]'.encode()),
        _cursor(b"\x00\xff"),
        "\u0000",
        "%",
        "A" * 300,
    ],
)
async def test_crafted_task_cursor_is_422(client, alice: ApiUser, cursor):
    response = await client.get("/tasks", params={"cursor": cursor}, headers=alice.headers)
    assert_field_error(response, "cursor")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(f"{OVERFLOW_HIGH}|{uuid.uuid4()}".encode()),
        _cursor(f"{OVERFLOW_LOW}|{uuid.uuid4()}".encode()),
        _cursor(f"2030-01-01T00:00:00|{uuid.uuid4()}".encode()),
        "\u0000",
    ],
)
async def test_crafted_notification_cursor_is_422(client, alice: ApiUser, cursor):
    response = await client.get("/notifications", params={"cursor": cursor}, headers=alice.headers)
    assert_field_error(response, "cursor")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/tasks", {"limit": "-1"}, "limit"),
        ("/tasks", {"limit": str(2**70)}, "limit"),
        ("/notifications", {"limit": "-1"}, "limit"),
        ("/notifications", {"limit": str(2**70)}, "limit"),
        ("/commands/" + str(uuid.uuid4()), {"wait": "nan"}, "wait"),
        ("/commands/" + str(uuid.uuid4()), {"wait": "-1"}, "wait"),
    ],
)
async def test_out_of_range_numbers_in_queries_are_422(client, alice: ApiUser, path, params, field):
    response = await client.get(path, params=params, headers=alice.headers)
    assert_field_error(response, field)


async def test_out_of_range_limit_on_webhook_deliveries_is_422(client, alice: ApiUser):
    hook = await client.post(
        f"/projects/{alice.personal_project_id}/webhooks",
        json={"url": "https://example.com/hook", "events": ["*"], "secret": "s" * 16},
        headers=alice.headers,
    )
    assert hook.status_code == 201, hook.text
    path = f"/projects/{alice.personal_project_id}/webhooks/{hook.json()['id']}/deliveries"
    for limit in ("-1", "0", str(2**70)):
        response = await client.get(path, params={"limit": limit}, headers=alice.headers)
        assert_field_error(response, "limit")


# --- sizes and headers -----------------------------------------------------------------------


async def test_huge_strings_are_422_not_500(client, alice: ApiUser):
    huge = "x" * 600_000
    for method, path, body, field in [
        ("POST", "/projects", {"name": "p", "description": huge}, "description"),
        ("POST", "/tasks", {"title": "x", "description": huge}, "description"),
        ("POST", "/auth/login", {"email": huge, "password": "p"}, "email"),
    ]:
        response = await client.request(method, path, json=body, headers=alice.headers)
        assert_field_error(response, field)


async def test_nul_in_idempotency_key_is_not_a_server_error(client):
    user = await register_and_login(client, "Idem")
    response = await client.post(
        "/tasks",
        json={"title": "keyed"},
        headers={**user.headers, "Idempotency-Key": "k\u0000ey"},
    )
    assert response.status_code in (202, 422), response.text
