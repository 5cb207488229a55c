"""CORS against a real server: real preflights from an allowed and a refused origin, answered
before authentication and rate limits; the headers a browser script needs are exposed, on
refusals too; and no CORS at all when ``api.cors_origins`` is empty (the default)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from taskstream.settings import Settings
from tests.integration.http_support import ApiServer, register_and_login, relaxed_limits

ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def server(settings: Settings, database, topics) -> Iterator[ApiServer]:
    tuned = relaxed_limits(settings, anonymous="3/minute")
    api = tuned.api.model_copy(update={"cors_origins": [ORIGIN]})
    server = ApiServer(tuned.model_copy(update={"api": api})).start()
    yield server
    server.stop()


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def preflight_headers(method: str, headers: str, origin: str = ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_a_preflight_from_an_allowed_origin_is_answered_without_auth_or_limits(http):
    # more preflights than the anonymous limit allows requests: none is counted
    for _ in range(6):
        response = await http.options(
            "/tasks",
            headers=preflight_headers(
                "POST", "authorization, content-type, idempotency-key, traceparent"
            ),
        )
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "ratelimit-limit" not in response.headers
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "idempotency-key", "last-event-id"} <= allowed
    assert {"traceparent"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers


async def test_a_preflight_for_the_stream_asks_for_last_event_id(http):
    response = await http.options(
        "/notifications/stream", headers=preflight_headers("GET", "last-event-id")
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_a_preflight_from_another_origin_is_refused(http):
    response = await http.options(
        "/tasks", headers=preflight_headers("POST", "content-type", "https://evil.example")
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_for_an_unlisted_header_is_refused(http):
    response = await http.options("/tasks", headers=preflight_headers("POST", "x-secret-thing"))
    assert response.status_code == 400


async def test_answers_to_an_allowed_origin_expose_what_a_script_reads(http):
    user = await register_and_login(http, "Browser")
    created = await http.post(
        "/tasks",
        json={"title": "from a browser"},
        headers={**user.headers, "Origin": ORIGIN, "Idempotency-Key": "k-1"},
    )
    assert created.status_code == 202, created.text
    assert created.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
    }
    assert {"retry-after", "location", "idempotent-replayed", "x-request-id"} <= exposed
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed
    replayed = await http.post(
        "/tasks",
        json={"title": "from a browser"},
        headers={**user.headers, "Origin": ORIGIN, "Idempotency-Key": "k-1"},
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["access-control-allow-origin"] == ORIGIN


async def test_refusals_carry_cors_headers_so_a_script_can_read_them(http):
    statuses = []
    for _ in range(5):  # the anonymous limit is 3/minute
        response = await http.get("/health", headers={"Origin": ORIGIN})
        statuses.append(response.status_code)
        assert response.headers["access-control-allow-origin"] == ORIGIN
    assert statuses[0] == 401 and statuses[-1] == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["instance"] == "/health"


async def test_without_configured_origins_there_is_no_cors(client, alice):
    response = await client.options("/tasks", headers=preflight_headers("POST", "content-type"))
    assert response.status_code == 204
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    simple = await client.get("/users/me", headers={**alice.headers, "Origin": ORIGIN})
    assert "access-control-allow-origin" not in simple.headers


def test_an_origin_with_a_path_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="not an origin"):
        Settings(api={"cors_origins": ["https://app.example.com/path"]})
