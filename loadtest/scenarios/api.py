"""Locust scenarios for the ingestion API (127.0.0.1 only, time-bounded).

    .venv/bin/locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 60s \
        --host http://127.0.0.1:8000

All simulated clients come from 127.0.0.1, so start the server under test with raised anonymous
limits (e.g. ``TASKSTREAM_LIMITS__REGISTRATION=100000/hour`` and
``TASKSTREAM_LIMITS__LOGIN=100000/minute``), otherwise registration answers 429 after 20
users per hour, as it should.

Each simulated client registers once, then mostly creates tasks (single and small batches),
sometimes follows up on a task it created and reads its task list. Numbers come from
`loadtest.bench_api` (wrk); locust is for mixed-traffic shape, not for the ceiling.
"""

from __future__ import annotations

import random
import uuid
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task

PASSWORD = "correct horse 42 battery"
MAX_RUN_TIME_S = 600


@events.init.add_listener
def _local_only(environment, **_kwargs) -> None:
    host = urlsplit(environment.host or "http://127.0.0.1:8000").hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing to load-test {host}: these scenarios target 127.0.0.1 only")
    if environment.parsed_options is not None and not environment.parsed_options.run_time:
        environment.parsed_options.run_time = MAX_RUN_TIME_S  # never unbounded


class ApiClient(HttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        email = f"locust-{uuid.uuid4().hex[:12]}@example.com"
        self.client.post(
            "/auth/register", json={"name": "Locust", "email": email, "password": PASSWORD}
        )
        tokens = self.client.post("/auth/login", json={"email": email, "password": PASSWORD})
        self.client.headers["Authorization"] = f"Bearer {tokens.json()['accessToken']}"
        self.task_ids: list[str] = []

    @task(20)
    def create_task(self) -> None:
        response = self.client.post(
            "/tasks", json={"title": "locust task", "priority": random.choice(["low", "high"])}
        )
        if response.status_code == 202:
            self.task_ids.append(response.json()["taskId"])
            del self.task_ids[:-100]

    @task(2)
    def create_batch(self) -> None:
        self.client.post("/tasks/batch", json={"tasks": [{"title": f"b{i}"} for i in range(20)]})

    @task(3)
    def start_work(self) -> None:
        if self.task_ids:
            self.client.post(
                f"/tasks/{random.choice(self.task_ids)}/transition",
                json={"to": "in_progress"},
                name="/tasks/{id}/transition",
            )

    @task(2)
    def list_tasks(self) -> None:
        self.client.get("/tasks", params={"limit": 50})

    @task(1)
    def idempotent_retry(self) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(2):
            self.client.post(
                "/tasks", json={"title": "retry"}, headers=headers, name="/tasks (idempotent retry)"
            )
