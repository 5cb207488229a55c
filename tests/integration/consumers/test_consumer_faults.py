"""Fault injection against real `taskstream consume` processes: kill -9, poison messages,
a database that goes away. Only this test's own processes and private database are touched."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from taskstream.enums import UserRole
from taskstream.infra.dead_letters import read_dead_letters
from taskstream.messages import Actor, CreateTask, UpdateTask, encode_command, new_command
from taskstream.settings import Settings
from tests.conftest import ROOT
from tests.integration.consumers.stream_support import (
    Lane,
    as_message,
    command_on,
    consumer_process,
    create_command,
    produce,
    seed_team,
    wait_for,
    wait_for_zero_lag,
)

pytestmark = [pytest.mark.slow, pytest.mark.fault]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


async def _count(dsn: str, ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM command_statuses WHERE command_id = ANY($1)", ids
            )
        )
    finally:
        await conn.close()


async def _wait_progress(dsn: str, ids: list[uuid.UUID], beyond: int, timeout: float) -> int:
    """Wait until more than ``beyond`` of ``ids`` are settled; returns the new count."""
    found = 0

    async def moved(conn: asyncpg.Connection) -> bool:
        nonlocal found
        found = int(
            await conn.fetchval(
                "SELECT count(*) FROM command_statuses WHERE command_id = ANY($1)", ids
            )
        )
        return found > beyond

    await wait_for(dsn, moved, timeout, f"progress beyond {beyond}")
    return found


async def test_kill_9_three_times_loses_and_doubles_nothing(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(
        settings, settings_env, database, TASKSTREAM_KAFKA__MAX_BATCH_SIZE="200"
    )
    team = await seed_team(lane.dsn)
    creates = [create_command(team, f"crash {i}") for i in range(8000)]
    updates = [
        command_on(team, c.task_id, UpdateTask(title=f"renamed {i}"))
        for i, c in enumerate(creates[:2000])
    ]
    # Each update follows its create on the same partition (key = task id).
    stream = [*creates[:4000], *updates[:1000], *creates[4000:], *updates[1000:]]
    ids = [c.command_id for c in stream]
    rng = random.Random(9)

    async def offer() -> None:  # a steady stream while the consumer is being killed
        for start in range(0, len(stream), 500):
            chunk = stream[start : start + 500]
            await produce(
                lane.kafka.bootstrap_servers,
                lane.kafka.task_commands_topic,
                [as_message(c) for c in chunk],
            )
            await asyncio.sleep(0.25)

    producer = asyncio.create_task(offer())
    consumer = consumer_process(lane.env, tmp_path / "consumer.log").start()
    seen = 0
    try:
        for _ in range(3):
            seen = await _wait_progress(lane.dsn, ids, seen, timeout=60)
            await asyncio.sleep(rng.uniform(0.0, 0.6))  # a random moment mid-consumption
            consumer.kill()
            consumer.start()
        await producer
        await wait_for(lane.dsn, lane.settled(ids, len(ids)), 120, "all commands after crashes")
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        producer.cancel()
        consumer.terminate()
    assert consumer.exits[:3] == [-9, -9, -9]

    await lane.assert_exactly_once(creates)
    conn = await asyncpg.connect(lane.dsn)
    try:
        audit = await conn.fetch(
            "SELECT command_id, count(*) AS n FROM task_events WHERE command_id = ANY($1) "
            "GROUP BY command_id",
            ids,
        )
        assert {r["command_id"] for r in audit} == set(ids)
        assert {r["n"] for r in audit} == {1}
        versions = await conn.fetch(
            "SELECT id, version FROM tasks WHERE id = ANY($1)", [c.task_id for c in creates]
        )
        updated = {c.task_id for c in creates[:2000]}
        assert {r["id"] for r in versions if r["version"] == 2} == updated
        assert {r["id"] for r in versions if r["version"] == 1} == (
            {c.task_id for c in creates} - updated
        )
    finally:
        await conn.close()


async def test_poison_goes_to_dlq_neighbours_apply_and_replay_fixes(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    key = str(uuid.uuid4()).encode()  # one key: poison and neighbours share a partition
    goods = [create_command(team, f"neighbour {i}") for i in range(3)]
    broken = create_command(team, "fixable")
    broken_raw = encode_command(broken).replace(b'"priority":"medium"', b'"priority":"extreme"')
    envelope = msgspec.json.decode(encode_command(goods[0]))
    unknown = msgspec.json.encode({**envelope, "commandId": str(uuid.uuid4()), "type": "task.x"})
    future = msgspec.json.encode({**envelope, "commandId": str(uuid.uuid4()), "version": 9})
    # Passes the rules (admins need no membership) but violates a foreign key: the database
    # refuses it, the consumer isolates it and rejects it alone.
    ghost = new_command(
        CreateTask(project_id=team.project_id, title="ghost"),
        actor=Actor(user_id=uuid.uuid4(), role=UserRole.ADMIN),
        task_id=uuid.uuid4(),
    )
    trace = [("x-trace-id", b"trace-poison")]
    messages = [
        (key, encode_command(goods[0]), trace),
        (key, b"\xff definitely not json", trace),
        (key, encode_command(goods[1]), trace),
        (key, unknown, trace),
        (key, future, trace),
        (key, broken_raw, trace),
        (key, encode_command(ghost), trace),
        (key, encode_command(goods[2]), trace),
    ]
    await produce(lane.kafka.bootstrap_servers, lane.kafka.task_commands_topic, messages)
    consumer = consumer_process(lane.env, tmp_path / "consumer.log").start()
    try:
        settled_ids = [*(g.command_id for g in goods), ghost.command_id]
        await wait_for(lane.dsn, lane.settled(settled_ids, 4), 60, "neighbours")
        await wait_for_zero_lag(lane.kafka, timeout=30)
        letters = await read_dead_letters(lane.kafka)
        assert [d.value for d in letters] == [
            b"\xff definitely not json",
            unknown,
            future,
            broken_raw,
        ]
        topic = lane.kafka.task_commands_topic
        for letter in letters:
            assert letter.key == key
            assert letter.header("x-trace-id") == "trace-poison"
            assert letter.header("x-original-topic") == topic
            assert letter.header("x-original-partition") is not None
            assert letter.header("x-failed-at")
            assert letter.header("x-error")
        offsets = [int(d.header("x-original-offset") or -1) for d in letters]
        assert offsets == [1, 3, 4, 5]
        assert "UnknownCommandError" in (letters[1].header("x-error") or "")
        conn = await asyncpg.connect(lane.dsn)
        try:
            ghost_status = await conn.fetchrow(
                "SELECT status::text, reason FROM command_statuses WHERE command_id = $1",
                ghost.command_id,
            )
        finally:
            await conn.close()
        assert ghost_status["status"] == "rejected"
        assert "ForeignKeyViolation" in ghost_status["reason"]
        listing = lane.cli("dlq", "list")
        assert "4 dead letter(s)" in listing

        fixed = tmp_path / "fixed.json"
        fixed.write_bytes(broken_raw.replace(b'"extreme"', b'"high"'))
        lane.cli("dlq", "replay", "--id", letters[3].id, "--value-file", str(fixed))
        await wait_for(lane.dsn, lane.settled([broken.command_id], 1), 60, "replayed command")
        conn = await asyncpg.connect(lane.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT priority::text FROM tasks WHERE id = $1", broken.task_id
            )
            assert row["priority"] == "high"
        finally:
            await conn.close()
        # Replaying the fixed message again changes nothing: it is a duplicate now.
        lane.cli("dlq", "replay", "--id", letters[3].id, "--value-file", str(fixed))
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        assert consumer.terminate() == 0
    await lane.assert_exactly_once([*goods, broken])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temp dir that this test may stop and start."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ts-pg-"))
        self.port = _free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"

    def _pg(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        log = str(self.dir / "server.log")  # the server must not hold our stdout pipe
        self._pg(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    def stop(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


async def test_database_outage_mid_stream_skips_nothing(
    settings: Settings,
    settings_env: dict[str, str],
    private_postgres: PrivatePostgres,
    tmp_path: Path,
) -> None:
    admin = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:{private_postgres.port}/postgres"
    )
    await admin.execute('CREATE DATABASE "taskstream"')
    await admin.close()
    url = private_postgres.url("taskstream")
    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "TASKSTREAM_DB__URL": url},
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    lane = await Lane.create(settings, settings_env, url, TASKSTREAM_KAFKA__MAX_BATCH_SIZE="100")
    team = await seed_team(lane.dsn)
    creates = [create_command(team, f"outage {i}") for i in range(6000)]
    ids = [c.command_id for c in creates]
    await produce(
        lane.kafka.bootstrap_servers,
        lane.kafka.task_commands_topic,
        [as_message(c) for c in creates],
    )
    consumer = consumer_process(lane.env, tmp_path / "consumer.log").start()
    try:
        await _wait_progress(lane.dsn, ids, 500, timeout=60)
        private_postgres.stop()  # mid-stream, as abruptly as a crash
        await asyncio.sleep(4)  # the outage itself: the consumer retries meanwhile
        assert consumer.alive()
        private_postgres.start()
        await wait_for(lane.dsn, lane.settled(ids, len(ids)), 120, "all after the outage")
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        assert consumer.terminate() == 0
    log = consumer.log.read_text()
    assert "not durable yet" in log
    await lane.assert_exactly_once(creates)
