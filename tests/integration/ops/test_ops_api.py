"""The ops routes with the real app in-process: who may open the dashboard, the one-time
ticket, the JSON sections, and the API docs pages that load nothing from another origin."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.http_support import ApiUser
from tests.integration.ops.support import register_admin

ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_a_ticket_opens_the_dashboard_once_for_an_admin_only(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    alice: ApiUser,
) -> None:
    assert (await client.post("/ops/tickets", headers=alice.headers)).status_code == 403
    assert (await client.get("/ops")).status_code == 401
    admin = await register_admin(client, session_factory)

    issued = await client.post("/ops/tickets", headers=admin.headers)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["expiresIn"] == 60
    assert body["url"] == f"/ops?ticket={body['ticket']}"

    page = await client.get(body["url"])
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    token = re.search(r'name="ops-token" content="([^"]+)"', page.text)
    assert token is not None
    # the embedded token is an admin access token the page uses for the JSON routes
    overview = await client.get(
        "/ops/api/overview", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert overview.status_code == 200, overview.text

    again = await client.get(body["url"])
    assert again.status_code == 401
    assert (await client.get("/ops?ticket=made-up")).status_code == 401
    # a client that can send headers opens it with its own token
    assert (await client.get("/ops", headers=admin.headers)).status_code == 200
    assert (await client.get("/ops", headers=alice.headers)).status_code == 403


async def test_the_json_routes_are_for_admins_and_answer_every_section(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    alice: ApiUser,
) -> None:
    for path in ("/ops/api/overview", "/ops/api/dead-letters"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=alice.headers)).status_code == 403
    replay = await client.post(
        "/ops/api/dead-letters/replay", json={"all": True}, headers=alice.headers
    )
    assert replay.status_code == 403
    admin = await register_admin(client, session_factory)

    overview = (await client.get("/ops/api/overview", headers=admin.headers)).json()
    assert overview["lag"]["error"] is None
    assert [p["partition"] for p in overview["lag"]["partitions"]] == [0, 1, 2, 3]
    assert overview["commands"]["error"] is None
    assert overview["outbox"]["backlog"] >= 0
    assert overview["queues"]["error"] is None
    kinds = {q["kind"] for q in overview["queues"]["queues"]}
    assert kinds == {"work", "delay", "dead-letter"}
    assert overview["dependencies"]["postgres"]["status"] == "up"
    assert overview["dependencies"]["rabbitmq"]["status"] == "up"

    letters = (await client.get("/ops/api/dead-letters", headers=admin.headers)).json()
    assert letters["error"] is None
    assert letters["count"] == len(letters["letters"])
    missing = await client.post(
        "/ops/api/dead-letters/replay", json={"ids": ["99:99"]}, headers=admin.headers
    )
    assert missing.status_code == 404
    nothing = await client.post("/ops/api/dead-letters/replay", json={}, headers=admin.headers)
    assert nothing.status_code == 400


async def test_the_docs_pages_reference_only_same_origin_assets(client: httpx.AsyncClient) -> None:
    for path in ("/schema", "/schema/swagger"):
        page = await client.get(path)
        assert page.status_code == 200, path
        references = ASSET_REFERENCE.findall(page.text)
        assert references, f"{path} loads its scripts"
        assert [r for r in references if not r.startswith("/")] == []
        for reference in references:
            asset = await client.get(reference)
            assert asset.status_code == 200, reference
            assert len(asset.content) > 500, reference
    assert (await client.get("/docs-assets/../pyproject.toml")).status_code == 404
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_the_dashboard_assets_are_served_from_the_package(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get("/ops/assets/ops.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/ops/api/overview" in script.text
    assert (await client.get("/ops/assets/index.html")).status_code == 404
