"""What every scenario shares: options (environment variables or locust.conf), the seeded
credentials, this process's record of accepted commands, and a user that keeps its access
token fresh.

Options are locust command-line arguments, so each can be given as ``--batch-size 50``, as
``LOADTEST_BATCH_SIZE=50`` in the environment, or as ``batch-size = 50`` in locust.conf.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from itertools import count
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events
from locust.env import Environment
from locust.runners import WorkerRunner

from taskstream.loadtesting.run_files import CommandLog, Credentials, SeededUser, read_credentials

MAX_RUN_TIME_S = 3600
REFRESH_MARGIN_S = 60  # refresh this long before the access token expires


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("taskstream")
    group.add_argument(
        "--run-dir", env_var="LOADTEST_RUN_DIR", default="", help="seeded run directory"
    )
    group.add_argument("--ingest-weight", env_var="LOADTEST_INGEST_WEIGHT", type=int, default=6)
    group.add_argument("--team-weight", env_var="LOADTEST_TEAM_WEIGHT", type=int, default=2)
    group.add_argument("--reader-weight", env_var="LOADTEST_READER_WEIGHT", type=int, default=2)
    group.add_argument(
        "--auth-users",
        env_var="LOADTEST_AUTH_USERS",
        type=int,
        default=1,
        help="auth-churn users (a fixed count: login is limited per client address)",
    )
    group.add_argument("--batch-size", env_var="LOADTEST_BATCH_SIZE", type=int, default=20)
    group.add_argument(
        "--auth-pacing",
        env_var="LOADTEST_AUTH_PACING",
        type=float,
        default=15.0,
        help="seconds per login/refresh/logout cycle of one auth-churn user",
    )
    group.add_argument(
        "--locust-workers",
        env_var="LOADTEST_WORKERS",
        type=int,
        default=1,
        help="worker processes of a distributed run (spreads the seeded users over them)",
    )


class RunState:
    """Per-process state: the credentials, which seeded user comes next, the command log."""

    credentials: Credentials | None = None
    log: CommandLog | None = None
    run_dir: Path | None = None
    next_index = count()
    worker_index = 0
    workers = 1


def options(environment: Environment) -> Any:
    return environment.parsed_options


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    opts = options(environment)
    if opts is None:
        return
    if getattr(opts, "headless", False) and not opts.run_time:
        opts.run_time = MAX_RUN_TIME_S  # never unbounded
    # the user classes read their weights here, on the master and on every worker
    from loadtest.scenarios.auth_churn import AuthChurn  # noqa: PLC0415
    from loadtest.scenarios.ingest import IngestClient  # noqa: PLC0415
    from loadtest.scenarios.reader import Reader  # noqa: PLC0415
    from loadtest.scenarios.team import ProjectTeam  # noqa: PLC0415

    IngestClient.weight = opts.ingest_weight
    ProjectTeam.weight = opts.team_weight
    Reader.weight = opts.reader_weight
    AuthChurn.fixed_count = opts.auth_users
    RunState.workers = max(1, opts.locust_workers)
    if opts.run_dir:
        RunState.run_dir = Path(opts.run_dir)


@events.quitting.add_listener
def _flush_on_quit(**_kwargs: Any) -> None:
    if RunState.log is not None:
        RunState.log.close()


@events.test_stop.add_listener
def _flush_on_stop(**_kwargs: Any) -> None:
    if RunState.log is not None:
        RunState.log.flush()


def credentials() -> Credentials:
    if RunState.credentials is None:
        if RunState.run_dir is None:
            raise RuntimeError(
                "no seeded run: give --run-dir (or LOADTEST_RUN_DIR) from `taskstream loadtest"
                " seed`, or start through `taskstream loadtest run`"
            )
        RunState.credentials = read_credentials(RunState.run_dir)
    return RunState.credentials


def record(command_id: str, task_id: str | None, kind: str) -> None:
    """Append an accepted command to this process's file in the run directory."""
    if RunState.log is None:
        assert RunState.run_dir is not None
        RunState.log = CommandLog(RunState.run_dir)
    RunState.log.record(command_id, task_id, kind)


def token_expiry(token: str) -> float:
    """The ``exp`` claim of a JWT (read, not verified: the server verifies)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


class SeededApiUser(FastHttpUser):
    """A simulated client acting as one seeded user; refreshes its access token before it
    expires (on 429 it keeps the current one and tries again after Retry-After)."""

    abstract = True
    seeded: SeededUser
    access_token: str
    refresh_token: str

    def on_start(self) -> None:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            RunState.worker_index = runner.worker_index
        users = credentials().users
        # distinct seeded users per simulated client (also across workers) while there are
        # enough: two clients rotating one refresh token would look like a replay
        index = next(RunState.next_index) * RunState.workers + RunState.worker_index
        self.seeded = users[index % len(users)]
        self.access_token = self.seeded.access_token
        self.refresh_token = self.seeded.refresh_token
        self.expires_at = token_expiry(self.access_token)
        self.next_refresh_at = self.expires_at - REFRESH_MARGIN_S

    @property
    def auth(self) -> dict[str, str]:
        if time.time() >= self.next_refresh_at:
            self._refresh()
        return {"Authorization": f"Bearer {self.access_token}"}

    def _refresh(self) -> None:
        with self.client.post(
            "/auth/refresh",
            json={"refreshToken": self.refresh_token},
            name="auth: refresh (token expiry)",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                body = response.json()
                self.access_token, self.refresh_token = body["accessToken"], body["refreshToken"]
                self.expires_at = token_expiry(self.access_token)
                self.next_refresh_at = self.expires_at - REFRESH_MARGIN_S
                response.success()
            elif response.status_code == 429:
                retry = float(response.headers.get("Retry-After") or 5)
                self.next_refresh_at = time.time() + retry
                response.success()  # the current token is still valid
            else:
                self.next_refresh_at = time.time() + 5
                response.failure(f"refresh answered {response.status_code}")

    def accepted(self, response: Any, kind: str, expected: int = 202) -> dict[str, Any] | None:
        """Check a command response (inside ``catch_response``); record what was accepted."""
        if response.status_code != expected:
            response.failure(f"{response.status_code}: {response.text[:200]}")
            return None
        body = response.json()
        for item in body.get("tasks") or [body]:
            record(item["commandId"], item.get("taskId"), kind)
        return body

    def wait_settled(self, command_id: str, wait_s: float = 10) -> dict[str, Any] | None:
        """``GET /commands/{id}?wait``: the command's status once settled (None: not in time)."""
        with self.client.get(
            f"/commands/{command_id}?wait={wait_s:g}",
            headers=self.auth,
            name="/commands/{id}?wait",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            return response.json()


def new_key() -> str:
    return uuid.uuid4().hex
