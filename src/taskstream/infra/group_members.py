"""Who is in a consumer group (default: the applier group) and which partitions each member
holds (DescribeGroups).

Apache Kafka answers with each member's client id, host and assignment. tansu answers with
the member ids only (empty assignment bytes): then ``partitions`` is None and per-member lag
cannot be derived from the broker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from taskstream.infra.lag import ConsumerGroup, applier_group
from taskstream.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    # Partitions of ``topic`` assigned to the member; None when the broker did not say.
    partitions: list[int] | None


@dataclass(frozen=True, slots=True)
class GroupMembers:
    group: str
    state: str
    members: list[GroupMember]


def _assigned(raw: bytes, topic: str) -> list[int] | None:
    if not raw:
        return None
    try:
        assignment = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:  # a foreign protocol's bytes: say nothing rather than something wrong
        return None
    return sorted(p for t, parts in assignment.assignment for p in parts if t == topic)


async def group_members(
    settings: KafkaSettings, timeout_s: float = 3.0, group: ConsumerGroup | None = None
) -> GroupMembers:
    """``group``'s state and members (default: the applier group), bounded by ``timeout_s``."""
    wanted = group or applier_group(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        responses = await asyncio.wait_for(
            admin.describe_consumer_groups([wanted.group]), timeout_s
        )
    finally:
        await admin.close()
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["group"] != wanted.group:
                continue
            members = [
                GroupMember(
                    member_id=m["member_id"],
                    client_id=m["client_id"],
                    host=m["client_host"],
                    partitions=_assigned(m["member_assignment"], wanted.topic),
                )
                for m in described["members"]
            ]
            return GroupMembers(wanted.group, described["state"] or "Unknown", members)
    return GroupMembers(wanted.group, "Unknown", [])
