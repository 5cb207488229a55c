"""A reader: pages through its task list with cursors, and follows a command it just sent
to its outcome with ``GET /commands/{id}?wait`` (a rejected or unsettled command fails)."""

from __future__ import annotations

from locust import between, tag, task

from loadtest.scenarios.common import SeededApiUser, new_key

MAX_PAGES = 3


class Reader(SeededApiUser):
    weight = 2
    wait_time = between(0.05, 0.2)

    @tag("reader", "list")
    @task(4)
    def page_through(self) -> None:
        cursor = None
        for page in range(MAX_PAGES):
            query = f"/tasks?limit=50&cursor={cursor}" if cursor else "/tasks?limit=50"
            with self.client.get(
                query,
                headers=self.auth,
                name="reader: GET /tasks (first page)"
                if page == 0
                else "reader: GET /tasks?cursor",
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}: {response.text[:200]}")
                    return
                cursor = response.json().get("nextCursor")
            if not cursor:
                return

    @tag("reader", "follow")
    @task(1)
    def follow_command(self) -> None:
        with self.client.post(
            "/tasks",
            json={"title": "followed task"},
            headers={**self.auth, "Idempotency-Key": new_key()},
            name="reader: POST /tasks (followed)",
            catch_response=True,
        ) as response:
            accepted = self.accepted(response, "followed")
            if accepted is None:
                return
            status = self.wait_settled(accepted["commandId"])
            if status is None:
                response.failure("not settled within the wait")
            elif status["status"] != "applied":
                response.failure(f"{status['status']}: {status.get('reason')}")
