"""`taskstream infra up|status|down` against the real machine, on private ports and state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.settings import Settings
from tests.conftest import ROOT, RUN_ID

pytestmark = pytest.mark.usefixtures("services_up")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def taskstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskstream", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
async def private_env(settings: Settings, tmp_path: Path):
    """Real PostgreSQL/Redis/RabbitMQ, but Kafka and clamd ports nobody uses and a private
    state dir."""
    db_name = f"taskstream_infra_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **settings.as_env(),
        "TASKSTREAM_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "TASKSTREAM_ATTACHMENTS__CLAMD_ADDRESS": f"tcp://127.0.0.1:{free_port()}",
        "TASKSTREAM_INFRA__STATE_DIR": str(tmp_path / "state"),
        "TASKSTREAM_DB__URL": settings.db.with_database(db_name),
    }
    yield env
    taskstream(env, "infra", "down")
    admin = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    await admin.close()


def test_up_starts_missing_broker_is_idempotent_and_down_stops_only_it(private_env) -> None:
    state_file = Path(private_env["TASKSTREAM_INFRA__STATE_DIR"]) / "started.json"

    before = taskstream(private_env, "infra", "status")
    assert before.returncode == 1
    assert "kafka" in before.stdout and "DOWN" in before.stdout
    assert "clamd" in before.stdout

    first = taskstream(private_env, "infra", "up")
    assert first.returncode == 0, first.stderr
    assert "kafka" in first.stdout and "starting it locally" in first.stdout
    assert "created database" in first.stdout
    assert "created topic task-commands" in first.stdout
    clamd_line = next(line for line in first.stdout.splitlines() if "clamd" in line)
    assert "starting it locally" in clamd_line
    started = json.loads(state_file.read_text())
    # the machine's own services were used, not restarted
    assert set(started) == {"kafka", "clamd"}

    status = taskstream(private_env, "infra", "status")
    assert status.returncode == 0, status.stdout
    kafka_line = next(line for line in status.stdout.splitlines() if line.startswith("kafka"))
    assert "up (started by taskstream)" in kafka_line
    clamd_line = next(line for line in status.stdout.splitlines() if line.startswith("clamd"))
    assert "up (started by taskstream): ClamAV" in clamd_line

    second = taskstream(private_env, "infra", "up")
    assert second.returncode == 0, second.stderr
    assert "starting" not in second.stdout and "created" not in second.stdout
    assert json.loads(state_file.read_text()) == started  # same broker process, nothing new

    down = taskstream(private_env, "infra", "down")
    assert down.returncode == 0
    assert "kafka" in down.stdout and "clamd" in down.stdout and "postgres" not in down.stdout
    for name in ("kafka", "clamd"):
        with pytest.raises(ProcessLookupError):
            os.kill(int(started[name]["pid"]), 0)
    after = taskstream(private_env, "infra", "status")
    assert "postgres" in after.stdout and "DOWN" not in after.stdout.split("kafka")[0]


def test_unreachable_remote_service_names_service_and_fix(private_env) -> None:
    env = {**private_env, "TASKSTREAM_REDIS__URL": "redis://192.0.2.1:6379/0"}
    result = taskstream(env, "infra", "up")
    assert result.returncode != 0
    assert "redis is not reachable at 192.0.2.1:6379" in result.stderr
    assert "docker compose -f docker-compose.infra.yml up -d redis" in result.stderr


def test_missing_local_binary_names_service_and_fix(private_env) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **private_env,
        "TASKSTREAM_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0",
        "PATH": venv_bin,  # no redis-server on PATH: it cannot be started
    }
    result = taskstream(env, "infra", "up")
    assert result.returncode != 0
    assert "redis is not reachable" in result.stderr and "no redis-server binary" in result.stderr
    assert "apt install redis-server" in result.stderr


async def test_delete_topics_removes_only_the_named_ones_that_exist(topics) -> None:
    doomed, kept = f"doomed-{RUN_ID}", f"kept-{RUN_ID}"
    await ensure_topics(topics, [doomed, kept], partitions=1)
    assert await delete_topics(topics, [doomed, f"never-created-{RUN_ID}"]) == [doomed]
    assert await delete_topics(topics, [doomed]) == []  # gone
    assert await delete_topics(topics, [kept]) == [kept]  # was still there
