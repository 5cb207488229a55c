"""Webhook targets: nothing inside the network is reachable through a webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from taskstream.app import create_app
from taskstream.settings import KafkaSettings, Settings, WebhookSettings
from tests.integration.http_support import ApiUser, register_and_login

INSIDE = [
    "http://169.254.169.254/latest/meta-data",
    "https://169.254.169.254/latest/meta-data",
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8080/hook",
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://api.localhost/hook",
    "https://10.0.0.5/hook",
    "https://172.16.3.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://[ff02::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0x7f.1/hook",
]


@pytest.fixture(scope="module")
async def strict_client(
    api_settings: Settings, database: str, topics: KafkaSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the production webhook policy: no allow-list, https only."""
    strict = api_settings.model_copy(update={"webhooks": WebhookSettings()})
    async with AsyncTestClient(app=create_app(strict), raise_server_exceptions=False) as client:
        yield client


async def _create(client: httpx.AsyncClient, user: ApiUser, url: str) -> httpx.Response:
    return await client.post(
        f"/projects/{user.personal_project_id}/webhooks",
        json={"url": url, "events": ["*"]},
        headers=user.headers,
    )


@pytest.mark.parametrize("url", INSIDE)
async def test_inside_targets_are_refused_at_registration(strict_client, url):
    user = await register_and_login(strict_client, "Mallory")
    response = await _create(strict_client, user, url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["path"] for e in response.json()["errors"]] == ["url"]


async def test_plain_http_is_refused_outside_development(strict_client):
    user = await register_and_login(strict_client, "Eve")
    response = await _create(strict_client, user, "http://93.184.215.14/hook")
    assert response.status_code == 422
    assert "https" in response.json()["errors"][0]["message"]
    public = await _create(strict_client, user, "https://93.184.215.14/hook")
    assert public.status_code == 201, public.text


async def test_generated_secret_is_standard_webhooks_format(strict_client):
    user = await register_and_login(strict_client, "Sam")
    created = await _create(strict_client, user, "https://93.184.215.14/hook")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    import base64

    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    listed = await strict_client.get(
        f"/projects/{user.personal_project_id}/webhooks", headers=user.headers
    )
    assert "secret" not in listed.json()[0]


async def test_webhooks_per_project_are_limited(api_settings, database, topics):
    few = api_settings.model_copy(
        update={"webhooks": api_settings.webhooks.model_copy(update={"max_per_project": 2})}
    )
    async with AsyncTestClient(app=create_app(few), raise_server_exceptions=False) as client:
        user = await register_and_login(client, "Quota")
        codes = [
            (await _create(client, user, f"https://93.184.215.14/hook/{n}")).status_code
            for n in range(3)
        ]
        assert codes == [201, 201, 409]
        problem = (await _create(client, user, "https://93.184.215.14/hook/x")).json()
        assert problem["type"].endswith("webhook-quota-exceeded")
