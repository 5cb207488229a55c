"""The served documentation carries the struct examples as written, nulls included, in both
documents (tests/unit/test_openapi_examples.py checks the generated document in process)."""

from __future__ import annotations

import httpx
import yaml


async def test_the_served_documents_show_the_examples_with_their_nulls(
    client: httpx.AsyncClient,
) -> None:
    as_json = await client.get("/schema/openapi.json")
    as_yaml = await client.get("/schema/openapi.yaml")
    assert as_json.status_code == 200 and as_yaml.status_code == 200
    for document in (as_json.json(), yaml.safe_load(as_yaml.text)):
        schemas = document["components"]["schemas"]
        project = schemas["ProjectResponse"]["examples"][0]
        assert project["archivedAt"] is None and project["ownerId"]
        assert schemas["MyInvitationPage"]["examples"][0]["nextCursor"] is None
    # Swagger UI's page embeds the document it renders
    swagger = await client.get("/schema/swagger")
    assert swagger.status_code == 200
    assert '"archivedAt":null' in swagger.text
