import uuid

from tests.integration.http_support import ApiUser, read_commands


async def test_create_task_is_accepted_and_on_the_topic(client, alice: ApiUser, api_settings):
    response = await client.post("/tasks", json={"title": "Write docs"}, headers=alice.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    command_id = uuid.UUID(body["commandId"])
    found = await read_commands(api_settings, {command_id})
    key, command, headers = found[command_id]
    assert key == body["taskId"].encode()
    assert command.payload.title == "Write docs"
    assert "x-trace-id" in headers
