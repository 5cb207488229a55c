"""How a fetched batch is shared between apply lanes: by partition, order kept, nothing lost."""

from __future__ import annotations

import uuid

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from taskstream.consumers.task_commands import PreparedBatch

from taskstream.messages import Actor, CreateTask, new_command
from taskstream.tasks.apply import InboundCommand

TOPIC = "task-commands"


def _inbound(partition: int, offset: int) -> InboundCommand:
    payload = CreateTask(project_id=uuid.uuid4(), title=f"p{partition}o{offset}")
    command = new_command(payload, actor=Actor(user_id=uuid.uuid4()), task_id=uuid.uuid4())
    return InboundCommand(command, TOPIC, partition, offset)


def _poison(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"k", b"{", None, 1, 1, [])


def test_shares_follow_partitions_and_keep_order() -> None:
    batch = PreparedBatch(7, {TopicPartition(TOPIC, p): 100 + p for p in range(5)})
    batch.inbound = [_inbound(p, o) for o in range(3) for p in range(5)]
    batch.poison = [(_poison(3, 9), ValueError("bad"))]

    shares = batch.split(2)

    assert len(shares) == 2
    even, odd = shares
    assert even is not None and odd is not None
    assert {tp.partition for tp in even.offsets} == {0, 2, 4}
    assert {tp.partition for tp in odd.offsets} == {1, 3}
    assert even.offsets[TopicPartition(TOPIC, 4)] == 104
    for share, lane in ((even, 0), (odd, 1)):
        assert share.generation == 7
        assert all(
            item.partition is not None and item.partition % 2 == lane for item in share.inbound
        )
        for partition in {tp.partition for tp in share.offsets}:
            offsets = [i.offset for i in share.inbound if i.partition == partition]
            assert offsets == [0, 1, 2]  # per-partition (so per-task) order kept
    assert [r.offset for r, _ in odd.poison] == [9]
    assert not even.poison
    assert even.size + odd.size == batch.size


def test_a_lane_without_partitions_in_the_batch_gets_none() -> None:
    batch = PreparedBatch(0, {TopicPartition(TOPIC, 0): 1})
    batch.inbound = [_inbound(0, 0)]
    assert batch.split(1) == [batch]
    shares = batch.split(3)
    assert shares[1] is None and shares[2] is None
    assert shares[0] is not None and shares[0].inbound == batch.inbound
