"""Every bad-input class answers RFC 9457 problem+json and publishes nothing."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://taskstream.dev/problems/{slug}"
    assert body["title"]
    return body


async def test_malformed_json_is_400(client, alice):
    response = await client.post(
        "/tasks",
        content=b'{"title": ',
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "x", "priority": "soon"}, "priority"),
        ({"title": "x", "deadline": "2030-01-01T00:00:00"}, "deadline"),  # naive datetime
        ({"title": "x", "projectId": "nope"}, "projectId"),
        ({}, "title"),
        ([], "$"),
    ],
)
async def test_schema_violations_are_422_with_field_paths(client, alice, body, path):
    response = await client.post("/tasks", json=body, headers=alice.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert [e["path"] for e in problem["errors"]] == [path]


async def test_empty_patch_is_422(client, alice):
    import uuid

    response = await client.patch(f"/tasks/{uuid.uuid4()}", json={}, headers=alice.headers)
    assert_problem(response, 422, "validation-error")


async def test_body_over_the_limit_is_413(client, alice, api_settings):
    size = api_settings.api.max_body_bytes + 1
    big = b'{"title": "' + b"x" * size + b'"}'
    response = await client.post(
        "/tasks", content=big, headers={**alice.headers, "content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


async def test_wrong_content_type_is_415(client, alice):
    response = await client.post(
        "/tasks",
        content=b"title=x",
        headers={**alice.headers, "content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_unknown_route_is_404_and_wrong_method_405(client, alice):
    assert_problem(await client.get("/nowhere", headers=alice.headers), 404, "not-found")
    assert_problem(await client.put("/tasks", headers=alice.headers), 405, "method-not-allowed")


async def test_bad_path_and_query_parameters(client, alice):
    assert_problem(await client.get("/tasks/not-a-uuid", headers=alice.headers), 404, "not-found")
    response = await client.get("/tasks", params={"limit": "0"}, headers=alice.headers)
    assert_problem(response, 422, "validation-error")
    response = await client.get("/tasks", params={"status": "sleeping"}, headers=alice.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["path"] == "status"
