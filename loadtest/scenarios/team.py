"""A project team member: creates a task in a team project and takes it through the workflow
(assign with a reviewer, start, send to review, approve), then reads the project's tasks and
stats. The workflow's commands share the task's partition, so they apply in the order sent;
the last one is followed to its outcome, and a rejection fails that request in the report."""

from __future__ import annotations

import random

from locust import between, tag, task

from loadtest.scenarios.common import SeededApiUser, new_key


class ProjectTeam(SeededApiUser):
    weight = 2
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        super().on_start()
        projects = self.seeded.project_ids
        self.project = str(random.choice(projects)) if projects else None

    def _command(self, path: str, body: dict[str, object], name: str, kind: str) -> dict | None:
        with self.client.post(
            path,
            json=body,
            headers={**self.auth, "Idempotency-Key": new_key()},
            name=name,
            catch_response=True,
        ) as response:
            return self.accepted(response, kind)

    @tag("team", "workflow")
    @task(3)
    def workflow(self) -> None:
        me = str(self.seeded.id)
        body: dict[str, object] = {"title": "team task", "priority": "high"}
        if self.project is not None:
            body["projectId"] = self.project
        created = self._command("/tasks", body, "team: POST /tasks", "team-create")
        if created is None:
            return
        task_path = f"/tasks/{created['taskId']}"
        steps = [
            ("/assign", {"assigneeId": me, "reviewerId": me}, "team: assign", "assign"),
            ("/transition", {"to": "in_progress"}, "team: start", "transition"),
            ("/transition", {"to": "in_review"}, "team: to review", "transition"),
        ]
        for suffix, step_body, name, kind in steps:
            if self._command(task_path + suffix, step_body, name, kind) is None:
                return
        with self.client.post(
            f"{task_path}/reviews",
            json={"verdict": "approve", "comment": "looks good"},
            headers={**self.auth, "Idempotency-Key": new_key()},
            name="team: approve",
            catch_response=True,
        ) as response:
            accepted = self.accepted(response, "review")
            if accepted is None:
                return
            # a 202 whose command is later rejected is a failure of this request
            status = self.wait_settled(accepted["commandId"])
            if status is None:
                response.failure("not settled within the wait")
            elif status["status"] != "applied":
                response.failure(f"{status['status']}: {status.get('reason')}")

    @tag("team", "read")
    @task(2)
    def read_project(self) -> None:
        if self.project is None:
            return
        self.client.get(
            f"/tasks?projectId={self.project}&limit=50",
            headers=self.auth,
            name="team: GET /tasks?projectId",
        )
        self.client.get(
            f"/projects/{self.project}/stats",
            headers=self.auth,
            name="team: GET /projects/{id}/stats",
        )
