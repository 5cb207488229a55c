"""Real `taskstream consume` processes against tansu and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg
import pytest

from taskstream.infra.lag import group_lag
from taskstream.infra.topics import ensure_topics
from taskstream.settings import Settings
from taskstream.web.health import health_report
from tests.integration.consumers.stream_support import (
    Lane,
    as_message,
    consumer_process,
    create_command,
    partitions_assigned,
    produce,
    seed_team,
    wait_for,
    wait_for_zero_lag,
)

pytestmark = pytest.mark.slow


async def test_twenty_thousand_creates_with_duplicates_apply_exactly_once(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    commands = [create_command(team, f"bulk {i}") for i in range(20_000)]
    messages = [as_message(c) for c in commands]
    rng = random.Random(4)
    for dup in rng.sample(messages, 1000):  # 5% sent twice, at a later random position
        messages.insert(rng.randrange(messages.index(dup) + 1, len(messages) + 1), dup)
    await produce(lane.kafka.bootstrap_servers, lane.kafka.task_commands_topic, messages)

    consumer = consumer_process(lane.env, tmp_path / "consumer.log").start()
    try:
        ids = [c.command_id for c in commands]
        await wait_for(lane.dsn, lane.settled(ids, 20_000), timeout=120, what="20k applied")
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        assert consumer.terminate() == 0, consumer.log.read_text()[-3000:]

    conn = await asyncpg.connect(lane.dsn)
    try:
        task_ids = [c.task_id for c in commands]
        assert await conn.fetchval("SELECT count(*) FROM tasks WHERE id = ANY($1)", task_ids) == (
            20_000
        )
        audit = await conn.fetch(
            "SELECT command_id, count(*) AS n FROM task_events WHERE task_id = ANY($1) "
            "GROUP BY command_id",
            task_ids,
        )
        assert {r["command_id"] for r in audit} == set(ids)
        assert {r["n"] for r in audit} == {1}
        applied = await conn.fetchval(
            "SELECT count(*) FROM command_statuses WHERE command_id = ANY($1) "
            "AND status = 'applied'",
            ids,
        )
        assert applied == 20_000
        stats = await conn.fetchrow(
            "SELECT todo FROM project_stats WHERE project_id = $1", team.project_id
        )
        assert stats["todo"] == 20_000
    finally:
        await conn.close()
    assert "duplicates" in consumer.log.read_text()


async def test_two_consumers_split_partitions_and_hand_over(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    first = consumer_process(lane.env, tmp_path / "a.log").start()
    second = consumer_process(lane.env, tmp_path / "b.log").start()
    try:
        wave1 = [create_command(team, f"w1 {i}") for i in range(3000)]
        await produce(
            lane.kafka.bootstrap_servers,
            lane.kafka.task_commands_topic,
            [as_message(c) for c in wave1],
        )
        await wait_for(lane.dsn, lane.settled([c.command_id for c in wave1], 3000), 90, "wave 1")
        # Both members took part: each has its own partitions.
        await wait_for_zero_lag(lane.kafka, timeout=30)
        assert partitions_assigned(first) and partitions_assigned(second)
        assert not set(partitions_assigned(first)[-1]) & set(partitions_assigned(second)[-1])

        assert second.terminate() == 0  # hands its partitions back on the way out
        wave2 = [create_command(team, f"w2 {i}") for i in range(3000)]
        await produce(
            lane.kafka.bootstrap_servers,
            lane.kafka.task_commands_topic,
            [as_message(c) for c in wave2],
        )
        await wait_for(lane.dsn, lane.settled([c.command_id for c in wave2], 3000), 90, "wave 2")
        await wait_for_zero_lag(lane.kafka, timeout=30)
        assert sorted(partitions_assigned(first)[-1]) == list(range(lane.kafka.partitions))
    finally:
        first.terminate()
        second.terminate()
    await lane.assert_exactly_once([*wave1, *wave2])


async def test_lag_command_reports_per_partition(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(settings, settings_env, database)
    await ensure_topics(lane.kafka, [lane.kafka.task_commands_topic])
    team = await seed_team(lane.dsn)
    commands = [create_command(team, f"lag {i}") for i in range(40)]
    await produce(
        lane.kafka.bootstrap_servers,
        lane.kafka.task_commands_topic,
        [as_message(c) for c in commands],
    )
    before = await group_lag(lane.kafka, timeout_s=10)
    assert before.total == 40
    assert all(p.committed is None for p in before.partitions)
    health = await health_report(settings.model_copy(update={"kafka": lane.kafka}))
    assert health.consumer_lag == 40
    out = lane.cli("consumers", "lag")
    # one block per consumer group; the task-command appliers' first
    appliers = out.strip().split("\n\n")[0].splitlines()
    assert appliers[0].startswith(f"group {lane.kafka.consumer_group}"), out
    assert appliers[-1].split() == ["total", "40"], out
    consumer = consumer_process(lane.env, tmp_path / "c.log").start()
    try:
        await wait_for(lane.dsn, lane.settled([c.command_id for c in commands], 40), 60, "lag")
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        consumer.terminate()
    after = await group_lag(lane.kafka, timeout_s=10)
    assert sum(p.committed or 0 for p in after.partitions) == 40
