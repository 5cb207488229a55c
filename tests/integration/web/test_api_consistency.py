"""The API-wide rules, checked on every route the app serves (walked from the app itself, so a
route added later is checked too): HEAD wherever GET, Allow listing every method, one
page-limit rule on every list, parameters named as sent, ``instance`` on every problem, one
answer to an empty body."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from taskstream.app import create_app
from taskstream.settings import Settings
from tests.integration.http_support import ApiUser, register_and_login
from tests.integration.ops.support import register_admin

PROBLEM = "application/problem+json"
PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
# Differ between two calls by design.
VOLATILE = {"date", "x-request-id", "x-trace-id", "ratelimit-remaining", "ratelimit-reset"}


def concrete(path: str) -> str:
    """The route's path with its parameters filled (unknown ids: 404 after validation)."""
    return PARAMETER.sub(lambda m: str(uuid.uuid4()) if m[2] == "uuid" else "x", path)


def handlers(app: Litestar) -> list[tuple[str, HTTPRouteHandler]]:
    return [
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler) and "OPTIONS" not in handler.http_methods
    ]


def is_stream(handler: HTTPRouteHandler) -> bool:
    return handler.media_type == "text/event-stream"


@pytest.fixture
async def admin(client: httpx.AsyncClient, session_factory) -> ApiUser:
    return await register_admin(client, session_factory)


async def test_head_answers_like_get_without_a_body_on_every_get_route(client, api_app, admin):
    checked = []
    for path, handler in handlers(api_app):
        if "GET" not in handler.http_methods or is_stream(handler):
            continue
        url = concrete(path)
        get = await client.get(url, headers=admin.headers)
        head = await client.head(url, headers=admin.headers)
        assert head.status_code == get.status_code, url
        assert head.content == b"", url
        assert head.headers["content-type"] == get.headers["content-type"], url
        same = set(get.headers) - VOLATILE - {"content-length"}
        assert same <= set(head.headers), url
        assert ("content-length" in head.headers) == ("content-length" in get.headers), url
        checked.append(url)
    assert len(checked) > 10


async def test_a_head_on_a_deterministic_route_has_the_get_length(client, alice):
    get = await client.get("/users/me", headers=alice.headers)
    head = await client.head("/users/me", headers=alice.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] != "0"


async def test_head_needs_what_get_needs(client):
    head = await client.head("/tasks")
    assert head.status_code == 401 and head.content == b""
    assert head.headers["www-authenticate"] == "Bearer"


async def test_options_and_405_list_every_method_of_the_path(client, api_app, alice):
    expected: dict[str, set[str]] = defaultdict(lambda: {"OPTIONS"})
    for path, handler in handlers(api_app):
        expected[path] |= set(handler.http_methods)
    for path, methods in expected.items():
        if "GET" in methods:
            methods.add("HEAD")
        url = concrete(path)
        options = await client.options(url, headers=alice.headers)
        assert options.status_code == 204, url
        assert set(options.headers["allow"].split(", ")) == methods, url
    # GET and POST /tasks live in two controllers; the path has both
    refused = await client.put("/tasks", headers=alice.headers, json={})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert refused.json()["instance"] == "/tasks"


async def test_every_list_caps_a_large_limit_and_refuses_zero(client, api_app, admin):
    lists = [
        (path, handler)
        for path, handler in handlers(api_app)
        if "GET" in handler.http_methods and "limit" in handler.parsed_fn_signature.parameters
    ]
    operations = {handler.operation_id for _, handler in lists}
    assert {"listTasks", "listNotifications", "listWebhookDeliveries"} <= operations
    assert "listOpsDeadLetters" in operations
    for path, _ in lists:
        url = concrete(path)
        refused = await client.get(url, params={"limit": 0}, headers=admin.headers)
        assert refused.status_code == 422, url
        problem = refused.json()
        assert [e["path"] for e in problem["errors"]] == ["limit"], url
        assert problem["instance"] == url
        capped = await client.get(url, params={"limit": 100_000}, headers=admin.headers)
        # an unknown parent id is a 404 after the limit was accepted
        assert capped.status_code == (404 if "{" in path else 200), (url, capped.text)


@pytest.fixture
async def small_pages(
    api_settings: Settings, database: str, topics
) -> AsyncIterator[httpx.AsyncClient]:
    api = api_settings.api.model_copy(update={"page_limit_max": 2})
    app = create_app(api_settings.model_copy(update={"api": api}))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


async def test_a_limit_above_the_maximum_gets_full_pages_and_a_cursor(small_pages, session_factory):
    user = await register_and_login(small_pages, "Paged")
    now = datetime.now(UTC)
    async with session_factory() as session:
        for minutes in range(3):
            await session.execute(
                text(
                    "INSERT INTO notifications (id, user_id, event_id, event_type, title,"
                    " created_at) VALUES (:id, :user, :event, 'task.assigned', 't', :at)"
                ),
                {
                    "id": uuid.uuid4(),
                    "user": user.id,
                    "event": uuid.uuid4(),
                    "at": now - timedelta(minutes=minutes),
                },
            )
        await session.commit()
    first = await small_pages.get("/notifications?limit=100000", headers=user.headers)
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 2
    cursor = first.json()["nextCursor"]
    rest = await small_pages.get(
        "/notifications", params={"limit": 100_000, "cursor": cursor}, headers=user.headers
    )
    assert len(rest.json()["items"]) == 1 and rest.json()["nextCursor"] is None


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/tasks?dueBefore=tomorrow", "dueBefore"),
        ("/tasks?assigneeId=nobody", "assigneeId"),
        ("/tasks?projectId=nope", "projectId"),
        ("/notifications?unread=maybe", "unread"),
        (f"/commands/{uuid.uuid4()}?wait=long", "wait"),
    ],
)
async def test_parameter_errors_name_the_parameter_as_sent(client, alice, url, name):
    response = await client.get(url, headers=alice.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["path"] for e in problem["errors"]] == [name]
    assert problem["instance"] == url.split("?")[0]


async def test_a_bad_header_parameter_is_named_as_sent(client, alice):
    response = await client.get(
        "/notifications/stream", headers={**alice.headers, "Last-Event-ID": "not-an-id"}
    )
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["Last-Event-ID"]


async def test_every_protected_route_answers_401_with_its_instance(client, api_app):
    checked = 0
    for path, handler in handlers(api_app):
        if handler.opt.get("exclude_from_auth") or path.startswith(("/schema", "/health")):
            continue
        if path in ("/auth/login", "/auth/register", "/auth/refresh", "/metrics"):
            continue
        url = concrete(path)
        method = sorted(handler.http_methods)[0]
        response = await client.request(method, url)
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        if method != "HEAD":  # a HEAD answer has the GET's headers and no body
            assert response.json()["instance"] == url
        checked += 1
    assert checked > 20


async def test_an_empty_body_says_what_is_missing_on_every_route_that_takes_one(
    client, api_app, alice
):
    checked = []
    for path, handler in handlers(api_app):
        body = handler.parsed_fn_signature.parameters.get("data")
        if body is None or body.is_optional:  # no body, or one that may be left out
            continue
        url = concrete(path)
        method = sorted(handler.http_methods)[0]
        for headers in (alice.headers, {**alice.headers, "content-type": "application/json"}):
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 422, (method, url, response.text)
            problem = response.json()
            assert problem["detail"] == "A JSON body is required", url
            assert problem["instance"] == url
            assert problem["errors"] and all(
                e["message"] == "is required" for e in problem["errors"]
            )
        checked.append((method, path, [e["path"] for e in problem["errors"]]))
    assert ("POST", "/tasks", ["title"]) in checked
    assert ("POST", "/projects", ["name"]) in checked
    assert ("POST", "/tasks/batch", ["tasks"]) in checked


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("POST", "/tasks", {"content": b'{"title": '}, 400),
        ("POST", "/tasks", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", "/tasks", {"json": {"title": ""}}, 422),
        ("POST", "/tasks", {"json": []}, 422),
        ("GET", f"/tasks/{uuid.uuid4()}", {}, 404),
        ("DELETE", "/notifications", {}, 405),
    ],
)
async def test_every_problem_names_its_request(client, alice, method, url, kwargs, status):
    headers = {**alice.headers, "content-type": "application/json", **kwargs.pop("headers", {})}
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["instance"] == url


def snake_keys(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [k for k in value if "_" in k]
        return found + [k for v in value.values() for k in snake_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in snake_keys(v)]
    return []


async def test_the_health_report_is_camel_case(client, admin):
    response = await client.get("/health", headers=admin.headers)
    body = response.json()
    assert "consumerLag" in body
    assert snake_keys(body) == []


async def test_head_through_a_real_server_keeps_the_length_and_sends_no_body(served):
    user = await register_and_login(served, "Served")
    get = await served.get("/users/me", headers=user.headers)
    head = await served.head("/users/me", headers=user.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    # the connection is still usable: the server sent a complete answer
    assert (await served.get("/users/me", headers=user.headers)).json() == get.json()
