"""The task-command applier: one member of the consumer group that applies `task-commands`.

Delivery semantics, stated once and enforced here:

* offsets are committed only after the batch's database transaction committed (or its poison
  messages were acknowledged by the dead-letter topic), and only for partitions this member
  still owns; a crash anywhere before the commit means redelivery, which the inbox absorbs;
* an availability error (connection lost, shutdown, too many connections, timeout, deadlock,
  serialisation failure; ``db.is_availability_error``) is retried with backoff and jitter,
  holding the batch: nothing later is applied or committed past a command that is not durably
  applied, rejected or dead-lettered;
* every other error while applying is the fault of a command in the batch (a NUL character,
  a date PostgreSQL or Python cannot represent, a violated constraint): the batch is split in
  halves, in order, until the guilty command is alone; it is recorded as rejected with the
  reason, or, when even that cannot be stored (its envelope holds the bad value), sent to the
  dead-letter topic; its neighbours apply and the offsets are committed. So a command that can
  never be stored reaches a final state within seconds and never blocks its partition.

Partitions are split between ``kafka.apply_lanes`` lanes (partition % lanes). Each lane
applies its share of every fetched batch in its own transaction and commits its own
partitions' offsets, one batch after another, so per-partition (and so per-task) order holds,
while one lane's Python work overlaps another lane's time in PostgreSQL. Lanes touch disjoint
tasks and commands; the rows they share (project counters) are locked in sorted order, and a
transaction PostgreSQL aborts (deadlock, serialisation) is retried like any other failure.
Batches are fetched and decoded while the lanes apply earlier ones; a fetched batch is only a
read-ahead until its lane applies it, and is dropped (to be fetched again from the committed
offsets) if the group rebalanced meanwhile.

Why aiokafka directly rather than a FastStream subscriber: FastStream's manual ack on a batch
is ``consumer.commit()`` without offsets, i.e. "everything fetched so far on every partition",
and its loop moves on to the next batch when the handler raises, so a later ack would commit
past a batch that was never applied. It also gives no hook to let the in-flight batch finish
when partitions are revoked. Here the commit names exact offsets per partition, the loop holds
a failing batch until it is durable, and the rebalance listener waits for the batch in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import (
    create_engine,
    create_session_factory,
    describe_error,
    is_availability_error,
    is_value_error,
    sqlstate_of,
    transaction,
)
from taskstream.infra.dead_letters import dead_letter_headers
from taskstream.infra.topics import ensure_topics
from taskstream.kafka import new_producer
from taskstream.messages import UnknownCommandError, decode_command, encode_command
from taskstream.observability import telemetry
from taskstream.observability.metrics import (
    CONSUMER_APPLY_LATENCY,
    CONSUMER_BATCH_SIZE,
    CONSUMER_BATCHES,
    CONSUMER_COMMANDS,
    CONSUMER_LAG,
    CONSUMER_REBALANCES,
)
from taskstream.observability.metrics_listener import process_listener
from taskstream.observability.tracing import (
    TraceContext,
    context_from_headers,
    log_fields,
    trace_headers,
)
from taskstream.settings import Settings
from taskstream.tasks.apply import (
    ApplyResult,
    InboundCommand,
    apply_task_commands,
    reject_undeliverable,
)

log = logging.getLogger("taskstream.consumers.task_commands")

POISON_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnknownCommandError)
# Retry delays for an unavailable database or broker; each is jittered down to half, so the
# lanes and processes of a group do not retry in step.
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
# After SIGTERM a batch that still cannot be applied is abandoned (uncommitted) after this long.
STOP_GRACE_S = 10.0
Record: TypeAlias = ConsumerRecord[bytes, bytes]
# Counted once per batch (or per settled command), never per row.
APPLIED = CONSUMER_COMMANDS.labels("applied")
REJECTED = CONSUMER_COMMANDS.labels("rejected")
DUPLICATE = CONSUMER_COMMANDS.labels("duplicate")
DEAD_LETTERED = CONSUMER_COMMANDS.labels("dead_lettered")
# How long the lag refresh of a scrape waits for the committed offsets of a new assignment.
COMMITTED_FETCH_TIMEOUT_S = 1.0


# Decoding yields to the event loop every this many records, so a long decode of the next batch
# never holds up the current batch's next statement for long.
DECODE_SLICE = 256


@dataclass(slots=True)
class PreparedBatch:
    """One fetched batch, decoded; ``generation`` is the revocation count when it was fetched."""

    generation: int
    offsets: dict[TopicPartition, int]  # next offset to commit, per partition
    inbound: list[InboundCommand] = field(default_factory=list)
    poison: list[tuple[Record, Exception]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.inbound) + len(self.poison)

    def split(self, lanes: int) -> list[PreparedBatch | None]:
        """This batch's share for each lane (partition % lanes), None where a lane has none."""
        if lanes == 1:
            return [self]
        shares: list[PreparedBatch | None] = [None] * lanes

        def share(partition: int) -> PreparedBatch:
            lane = partition % lanes
            found = shares[lane]
            if found is None:
                found = shares[lane] = PreparedBatch(self.generation, {})
            return found

        for tp, offset in self.offsets.items():
            share(tp.partition).offsets[tp] = offset
        for item in self.inbound:
            share(item.partition or 0).inbound.append(item)
        for record, error in self.poison:
            share(record.partition).poison.append((record, error))
        return shares


def _trace_id(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The record's trace context as a ``traceparent`` (records from older producers carry
    only ``x-trace-id``), handed on to the command's events."""
    context = context_from_headers(headers)
    return context.traceparent if context is not None else None


def _trace_applied(inbound: Sequence[InboundCommand], result: ApplyResult, started_ns: int) -> None:
    """One DEBUG line and, with an exporter, one span per command of an applied batch."""
    debug = log.isEnabledFor(logging.DEBUG)
    if not debug and not telemetry.enabled():
        return
    ended_ns = time.time_ns()
    applied = set(result.applied)
    for item in inbound:
        command_id = item.command.command_id
        trace = TraceContext.parse(item.trace_id)
        if command_id in applied:
            outcome = "applied"
        else:
            outcome = "rejected" if command_id in result.rejected else "duplicate"
        if debug:
            log.debug(
                "%s command %s (%s)",
                outcome,
                command_id,
                item.command.type,
                extra=log_fields(trace, command_id),
            )
        telemetry.record_span(
            f"{outcome} {item.command.type}",
            trace,
            kind="consumer",
            start_ns=started_ns,
            end_ns=ended_ns,
            attributes={"taskstream.command_id": str(command_id)},
        )


class StopRequestedError(Exception):
    """Shutting down while the in-flight batch is not durable: leave it uncommitted."""


class _FinishInFlightOnRevoke(ConsumerRebalanceListener):
    """Revocation waits (bounded) for the batch in flight, so it commits while still owned."""

    def __init__(self, applier: TaskCommandApplier) -> None:
        self.applier = applier

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # A read-ahead batch returned before this point is stale: it is dropped, and the new
        # assignment (a fresh one, positions from the committed offsets) fetches it again.
        self.applier.generation += 1
        for tp in revoked:
            self.applier.committed.pop(tp, None)
        if not revoked:
            return
        try:
            await asyncio.wait_for(self.applier.idle.wait(), self.applier.revoke_wait_s)
        except TimeoutError:
            log.warning("batch still in flight at revocation; its offsets will not be committed")
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        CONSUMER_REBALANCES.inc()
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))


class TaskCommandApplier:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.session_factory = session_factory
        self.stop = stop or asyncio.Event()
        self._stop_seen: float | None = None
        self.idle = asyncio.Event()  # set while no lane has a batch in flight
        self.idle.set()
        self.lanes = self.kafka.apply_lanes
        self._busy_lanes = 0
        self.generation = 0  # bumped when partitions are revoked (every rebalance)
        self.revoke_wait_s = self.kafka.session_timeout_ms / 1000
        # For the lag gauge and readiness: offsets this member committed (or found committed)
        # per owned partition, whether it has joined, which dependency holds a batch.
        self.committed: dict[TopicPartition, int] = {}
        self.joined = False
        self.failing: str | None = None
        self.totals = {
            "batches": 0,
            "messages": 0,
            "applied": 0,
            "rejected": 0,
            "duplicates": 0,
            "dead_lettered": 0,
            "busy_ms": 0,
        }
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            group_id=self.kafka.consumer_group,  # explicit group: offsets live in the broker
            client_id="taskstream-applier",
            enable_auto_commit=False,  # we commit explicit offsets after the DB commit
            auto_offset_reset="earliest",  # a new group must not skip accepted commands
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=max(300, self.kafka.session_timeout_ms // 3),
            # Long-poll no longer than we would wait for a batch anyway: the fetch wait is what
            # an idle consumer adds to a command's 202 -> applied latency.
            fetch_max_wait_ms=max(10, self.kafka.max_batch_wait_ms),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
        )
        # acks=all (new_producer): a dead letter must be durable before we commit past it
        self.producer = new_producer(
            self.kafka,
            client_id="taskstream-applier-dlq",
            linger_ms=self.kafka.linger_ms,
            max_request_size=8 * 1024 * 1024,
        )

    async def run(self) -> None:
        """Consume until ``stop`` is set; the in-flight batch is finished and committed."""
        await ensure_topics(
            self.kafka, [self.kafka.task_commands_topic, self.kafka.task_commands_dlq_topic]
        )
        await self.producer.start()
        self.consumer.subscribe(
            [self.kafka.task_commands_topic], listener=_FinishInFlightOnRevoke(self)
        )
        await self.consumer.start()
        self.joined = True
        log.info(
            "consuming %s as %s with %d apply lane(s)",
            self.kafka.task_commands_topic,
            self.kafka.consumer_group,
            self.lanes,
        )
        # One batch waiting per lane while it applies another: the read-ahead.
        queues: list[asyncio.Queue[PreparedBatch | None]] = [
            asyncio.Queue(maxsize=1) for _ in range(self.lanes)
        ]
        lanes = [asyncio.create_task(self._lane(queue)) for queue in queues]
        last_report = time.monotonic()
        try:
            while not self.stop.is_set() and not any(lane.done() for lane in lanes):
                prepared = await self._fetch()
                if prepared is None:
                    continue
                for queue, lane, share in zip(
                    queues, lanes, prepared.split(self.lanes), strict=True
                ):
                    if share is not None and not await self._hand_over(queue, lane, share):
                        break
                if time.monotonic() - last_report > 10:
                    log.info("totals %s", self.totals)
                    last_report = time.monotonic()
        except asyncio.CancelledError:
            for lane in lanes:  # cancelled, not stopped: abandon the batches in flight
                lane.cancel()
            raise
        finally:
            # Batches still queued are read-aheads: never applied, never committed. Each lane
            # finishes (and commits) the batch it is applying, then stops.
            for queue in queues:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
            results = await asyncio.gather(*lanes, return_exceptions=True)
            # stop() leaves the group at once (no session-timeout wait for the others) and,
            # with auto-commit off, commits nothing.
            await self.consumer.stop()
            await self.producer.stop()
            log.info("stopped; totals %s", self.totals)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _hand_over(
        self,
        queue: asyncio.Queue[PreparedBatch | None],
        lane: asyncio.Task[None],
        share: PreparedBatch,
    ) -> bool:
        """Queue ``share`` for its lane; False if the lane ended instead (stop or failure)."""
        put = asyncio.ensure_future(queue.put(share))
        await asyncio.wait({put, lane}, return_when=asyncio.FIRST_COMPLETED)
        if put.done():
            return True
        put.cancel()
        return False

    async def _lane(self, queue: asyncio.Queue[PreparedBatch | None]) -> None:
        """Apply this lane's batches in order until it is handed None."""
        while (prepared := await queue.get()) is not None:
            if self.stop.is_set():
                return  # a read-ahead: left uncommitted
            if prepared.generation != self.generation:
                # Fetched before a rebalance: the partitions restart from their committed
                # offsets, so these records come again (to us or to their new owner).
                log.info("dropped a read-ahead batch fetched before a rebalance")
                continue
            self._busy_lanes += 1
            self.idle.clear()
            started = time.perf_counter()
            try:
                await self._process(prepared)
                CONSUMER_BATCHES.inc()
                CONSUMER_BATCH_SIZE.observe(prepared.size)
                CONSUMER_APPLY_LATENCY.observe(time.perf_counter() - started)
                self.totals["batches"] += 1
                self.totals["messages"] += prepared.size
                self.totals["busy_ms"] += int((time.perf_counter() - started) * 1000)
            except StopRequestedError:
                log.warning("stopping with an undurable batch: left uncommitted")
                return
            finally:
                self._busy_lanes -= 1
                if not self._busy_lanes:
                    self.idle.set()

    async def _fetch(self) -> PreparedBatch | None:
        """The next batch from the broker, decoded (poison set aside for the DLQ)."""
        batch = await self.consumer.getmany(
            timeout_ms=self.kafka.max_batch_wait_ms or 1,
            max_records=self.kafka.max_batch_size,
        )
        # Taken when getmany returns (it only returns records of the current assignment): a
        # revocation from here on makes the batch stale. Records returned between the
        # revocation and the new assignment are not caught, and need not be: the inbox makes
        # a command applied by two members once in effect, and commits are filtered to owned
        # partitions.
        generation = self.generation
        if not batch:
            return None
        prepared = PreparedBatch(
            generation, {tp: records[-1].offset + 1 for tp, records in batch.items()}
        )
        decoded = 0
        for records in batch.values():
            for record in records:
                try:
                    command = decode_command(record.value or b"")
                except POISON_ERRORS as error:
                    prepared.poison.append((record, error))
                    continue
                prepared.inbound.append(
                    InboundCommand(
                        command,
                        record.topic,
                        record.partition,
                        record.offset,
                        _trace_id(record.headers),
                    )
                )
                decoded += 1
                if decoded % DECODE_SLICE == 0:
                    await asyncio.sleep(0)
        return prepared

    async def _process(self, prepared: PreparedBatch) -> None:
        poison, inbound = prepared.poison, prepared.inbound
        if poison:
            await self._until_durable(lambda: self._dead_letter(poison), "kafka")
        if inbound:
            await self._until_durable(lambda: self._apply(inbound), "postgres")
        await self._commit(prepared.offsets)

    async def _until_durable(self, step: Callable[[], Awaitable[None]], dependency: str) -> None:
        """Run ``step`` until it succeeds; never skip. Gives up only when asked to stop.

        ``step`` raises only when a dependency is unavailable (a command's own fault is
        settled inside it), so every retry here waits for the database or the broker."""
        attempt = 0
        while True:
            try:
                await step()
                self.failing = None
                return
            except Exception as error:
                self.failing = dependency
                if self.stop.is_set() and self._stop_grace_over():
                    raise StopRequestedError from error
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)] * random.uniform(0.5, 1.0)
                log.warning(
                    "batch not durable yet (%s); retrying in %.1fs", describe_error(error), delay
                )
                attempt += 1
                await asyncio.sleep(delay)

    def _stop_grace_over(self) -> bool:
        if self._stop_seen is None:
            self._stop_seen = time.monotonic()
        return time.monotonic() - self._stop_seen > STOP_GRACE_S

    async def _apply(self, inbound: list[InboundCommand]) -> None:
        started_ns = time.time_ns()
        try:
            async with transaction(self.session_factory) as session:
                result = await apply_task_commands(session, inbound)
        except Exception as error:
            if is_availability_error(error):
                raise  # the whole batch waits for the database (_until_durable)
            failure: Exception = error
        else:
            self.totals["applied"] += len(result.applied)
            self.totals["rejected"] += len(result.rejected)
            self.totals["duplicates"] += result.duplicates
            APPLIED.inc(len(result.applied))
            REJECTED.inc(len(result.rejected))
            DUPLICATE.inc(result.duplicates)
            _trace_applied(inbound, result, started_ns)
            return
        # A command in here cannot be stored (outside the except block, so a deep split does
        # not chain every level's traceback onto the next).
        if len(inbound) == 1:
            await self._settle_alone(inbound[0], failure)
            return
        # Halves in order keep per-task order; the cost is about two extra applies of the
        # batch plus 2 * log2(n) small ones per guilty command.
        half = len(inbound) // 2
        await self._apply(inbound[:half])
        await self._apply(inbound[half:])

    async def _settle_alone(self, item: InboundCommand, error: Exception) -> None:
        """Record ``item`` (which failed on its own) as rejected; if even that cannot be
        stored, dead-letter it. Raises only for availability errors."""
        why = describe_error(error)
        log.error(
            "command %s cannot be stored (%s); rejecting it",
            item.command.command_id,
            why,
            # neither PostgreSQL nor a value conversion refused it: a bug, so show where
            exc_info=sqlstate_of(error) is None and not is_value_error(error),
        )
        try:
            async with transaction(self.session_factory) as session:
                if await reject_undeliverable(
                    session, item, f"the command could not be stored: {why}"
                ):
                    self.totals["rejected"] += 1
                    REJECTED.inc()
        except Exception as reject_error:
            if is_availability_error(reject_error):
                raise
            await self._dead_letter_command(
                item, f"{why}; rejecting it failed too: {describe_error(reject_error)}"
            )

    async def _dead_letter_command(self, item: InboundCommand, error: str) -> None:
        """Send a decoded command the database cannot even record to the dead-letter topic,
        re-encoded (its bytes decode to the same command), with its trace id and the error."""
        command = item.command
        headers = trace_headers(item.trace_id)
        sent = await self.producer.send(
            self.kafka.task_commands_dlq_topic,
            value=encode_command(command),
            key=str(command.task_id).encode(),
            headers=dead_letter_headers(headers, error, item.topic, item.partition, item.offset),
        )
        await sent  # acked (acks=all) before the offset can be committed past it
        log.warning("dead-lettered command %s: %s", command.command_id, error)
        self.totals["dead_lettered"] += 1
        DEAD_LETTERED.inc()

    async def _dead_letter(self, poison: list[tuple[Record, Exception]]) -> None:
        topic = self.kafka.task_commands_dlq_topic
        sends = [
            await self.producer.send(
                topic,
                value=record.value,
                key=record.key,
                headers=dead_letter_headers(
                    record.headers,
                    f"{type(error).__name__}: {error}",
                    record.topic,
                    record.partition,
                    record.offset,
                ),
            )
            for record, error in poison
        ]
        await asyncio.gather(*sends)  # every dead letter acked (acks=all) before the commit
        for record, error in poison:
            log.warning(
                "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
            )
        self.totals["dead_lettered"] += len(poison)
        DEAD_LETTERED.inc(len(poison))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        owned = self.consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not mine:
            return
        try:
            await self.consumer.commit(mine)
            self.committed.update(mine)
        except (CommitFailedError, IllegalStateError) as error:
            # The group rebalanced under us: the new owner re-reads from the last commit and
            # the inbox turns the redelivery into duplicates. Nothing is lost.
            log.warning("offset commit refused after a rebalance: %s", error)
        except KafkaError as error:
            log.warning("offset commit failed (%s); the batch will be redelivered", error)

    def readiness(self) -> dict[str, bool]:
        """Joined the group, and no batch held by an unavailable dependency (no I/O)."""
        return {
            "kafka": self.joined and self.failing != "kafka",
            "postgres": self.failing != "postgres",
        }

    async def refresh_lag(self) -> None:
        """Set the lag gauge of each owned partition: high watermark (from fetch responses,
        right on tansu too) minus the committed offset."""
        owned = self.consumer.assignment()
        unknown = [tp for tp in owned if tp not in self.committed]
        for tp in unknown:  # a fresh assignment: what the group had committed before us
            async with asyncio.timeout(COMMITTED_FETCH_TIMEOUT_S):
                offset = await self.consumer.committed(tp)
            self.committed.setdefault(tp, offset or 0)
        CONSUMER_LAG.clear()
        for tp in owned:
            high = self.consumer.highwater(tp)
            if high is not None and tp in self.committed:
                CONSUMER_LAG.labels(str(tp.partition)).set(max(0, high - self.committed[tp]))


async def run_applier(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run one applier until ``stop`` is set (or the task is cancelled), with its metrics and
    health listener (``metrics.consume_port``)."""
    # a connection per lane, plus one for rejecting a command on its own
    lanes = settings.kafka.apply_lanes
    engine = create_engine(settings.db, pool_size=lanes + 1, max_overflow=2)
    applier = TaskCommandApplier(settings, create_session_factory(engine), stop)
    listen = settings.metrics
    try:
        async with process_listener(
            listen.host, listen.consume_port, applier.readiness, applier.refresh_lag
        ):
            await applier.run()
    finally:
        await engine.dispose()
