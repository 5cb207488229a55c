"""The ingest client: creates tasks as fast as it is answered, singly and in batches, every
request with an Idempotency-Key, and now and then retries one (the same ids come back)."""

from __future__ import annotations

import random

from locust import between, tag, task

from loadtest.scenarios.common import SeededApiUser, new_key

PRIORITIES = ("low", "medium", "high", "urgent")


class IngestClient(SeededApiUser):
    weight = 6
    wait_time = between(0.0, 0.05)

    def _project(self) -> str | None:
        # mostly the personal project (no projectId), sometimes a team project
        projects = self.seeded.project_ids
        return str(random.choice(projects)) if projects and random.random() < 0.3 else None

    def _task(self, title: str) -> dict[str, object]:
        body: dict[str, object] = {"title": title, "priority": random.choice(PRIORITIES)}
        if (project := self._project()) is not None:
            body["projectId"] = project
        return body

    @tag("ingest", "create")
    @task(20)
    def create_task(self) -> None:
        with self.client.post(
            "/tasks",
            json=self._task("locust task"),
            headers={**self.auth, "Idempotency-Key": new_key()},
            name="ingest: POST /tasks",
            catch_response=True,
        ) as response:
            self.accepted(response, "create")

    @tag("ingest", "batch")
    @task(2)
    def create_batch(self) -> None:
        size = self.environment.parsed_options.batch_size
        with self.client.post(
            "/tasks/batch",
            json={"tasks": [self._task(f"batch item {i}") for i in range(size)]},
            headers={**self.auth, "Idempotency-Key": new_key()},
            name="ingest: POST /tasks/batch",
            catch_response=True,
        ) as response:
            body = self.accepted(response, "batch")
            if body is not None and len(body["tasks"]) != size:
                response.failure(f"{len(body['tasks'])} of {size} tasks accepted")

    @tag("ingest", "retry")
    @task(1)
    def idempotent_retry(self) -> None:
        """The same request twice: the second answer must repeat the first's ids."""
        headers = {**self.auth, "Idempotency-Key": new_key()}
        body = self._task("retried task")
        first = None
        for attempt in ("first", "retry"):
            with self.client.post(
                "/tasks",
                json=body,
                headers=headers,
                name=f"ingest: POST /tasks (idempotent {attempt})",
                catch_response=True,
            ) as response:
                answer = self.accepted(response, "create")
                if first is None:
                    first = answer
                elif answer is not None and answer["commandId"] != first["commandId"]:
                    response.failure("the retry got a different command id")
