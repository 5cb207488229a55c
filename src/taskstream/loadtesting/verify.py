"""Verify a load-test run: every command the API accepted (recorded by the scenarios) was
applied exactly once or rejected with a reason, nothing is missing, nothing is duplicated.

"Duplicated" means a command left more than one audit row (``task_events`` holds one row per
applied command, and its command id has no unique key, so a double apply would show there;
``command_statuses`` is keyed by command id and could not). Latency is measured from
server-side timestamps: ``accepted_at`` (stamped by the API when it built the command, just
before the acknowledged publish that precedes the 202) to ``applied_at`` (stamped by the
consumer in the transaction that applied it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.infra.lag import group_lag
from taskstream.loadtesting.repository import VerificationRepository
from taskstream.loadtesting.run_files import RecordedCommand
from taskstream.outbox.repository import OutboxRepository
from taskstream.settings import Settings

CHUNK = 20_000
SHOWN_IDS = 20  # ids listed per problem in the report; the counts are complete


@dataclass(slots=True)
class Drain:
    drained: bool
    waited_s: float
    lag: int | None
    unsent_outbox: int | None
    detail: str = ""


@dataclass(slots=True)
class Verification:
    recorded_lines: int
    recorded: int
    applied: int
    rejected: int
    missing: int
    duplicated: int
    rejected_reasons: dict[str, int]
    missing_ids: list[str]
    duplicated_ids: list[str]
    latency_ms: dict[str, float]
    kinds: dict[str, int]
    drain: Drain
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


async def wait_drained(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], timeout_s: float
) -> Drain:
    """Wait until the applier group's lag is 0 and no outbox row is unsent, at most
    ``timeout_s`` seconds; the last reading either way."""
    started = time.monotonic()
    lag: int | None = None
    unsent: int | None = None
    detail = ""
    while True:
        try:
            lag = (await group_lag(settings.kafka, timeout_s=5.0)).total
        except (TimeoutError, OSError, ValueError) as exc:  # broker slow or unreachable
            lag, detail = None, f"lag unreadable: {exc!r}"
        async with sessions() as session:
            unsent = await OutboxRepository.from_session(session).unsent_count()
        waited = time.monotonic() - started
        if lag == 0 and unsent == 0:
            return Drain(True, waited, lag, unsent)
        if waited >= timeout_s:
            return Drain(False, waited, lag, unsent, detail)
        await asyncio.sleep(0.5)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max by nearest rank (empty: nothing)."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


async def verify_commands(
    sessions: async_sessionmaker[AsyncSession], recorded: Iterable[RecordedCommand], drain: Drain
) -> Verification:
    """Compare the recorded commands with what PostgreSQL settled (see the module)."""
    lines = 0
    kinds: Counter[str] = Counter()
    ids: dict[uuid.UUID, None] = {}  # insertion-ordered set: an idempotent retry repeats an id
    for command in recorded:
        lines += 1
        kinds[command.kind] += 1
        ids[command.command_id] = None
    wanted = list(ids)
    outcomes = {}
    audits: dict[uuid.UUID, int] = {}
    async with sessions() as session:
        repo = VerificationRepository.from_session(session)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            outcomes.update({o.command_id: o for o in await repo.outcomes(chunk)})
            audits.update(await repo.audit_counts(chunk))
    reasons: Counter[str] = Counter()
    latencies: list[float] = []
    applied = 0
    for outcome in outcomes.values():
        if outcome.status == "applied":
            applied += 1
            latencies.append((outcome.applied_at - outcome.accepted_at).total_seconds() * 1000)
        else:
            reasons[outcome.reason or "(no reason)"] += 1
    missing = [i for i in wanted if i not in outcomes]
    duplicated = [i for i, n in audits.items() if n > 1]
    problems = []
    if not drain.drained:
        problems.append(
            f"the pipeline did not drain within {drain.waited_s:.0f} s "
            f"(lag {drain.lag}, unsent outbox rows {drain.unsent_outbox}) {drain.detail}".strip()
        )
    return Verification(
        recorded_lines=lines,
        recorded=len(wanted),
        applied=applied,
        rejected=sum(reasons.values()),
        missing=len(missing),
        duplicated=len(duplicated),
        rejected_reasons=dict(reasons.most_common()),
        missing_ids=[str(i) for i in missing[:SHOWN_IDS]],
        duplicated_ids=[str(i) for i in duplicated[:SHOWN_IDS]],
        latency_ms={k: round(v, 1) for k, v in percentiles(latencies).items()},
        kinds=dict(kinds.most_common()),
        drain=drain,
        problems=problems,
    )


def summary(result: Verification) -> str:
    """The human-readable report."""
    lat = result.latency_ms
    kinds = ", ".join(f"{kind} {n}" for kind, n in result.kinds.items()) or "none"
    lines = [
        f"recorded {result.recorded} accepted command(s) ({result.recorded_lines} record(s):"
        f" {kinds})",
        f"applied once {result.applied}, rejected {result.rejected}, "
        f"{result.missing} missing, {result.duplicated} duplicated",
    ]
    if lat:
        lines.append(
            f"202 -> applied (server clocks): p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, "
            f"p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms"
        )
    lines += [f"  rejected x{n}: {reason}" for reason, n in result.rejected_reasons.items()]
    lines += [f"  missing: {i}" for i in result.missing_ids]
    lines += [f"  duplicated: {i}" for i in result.duplicated_ids]
    drain = result.drain
    lines.append(
        f"drain: {'done' if drain.drained else 'NOT done'} after {drain.waited_s:.1f} s "
        f"(lag {drain.lag}, unsent outbox rows {drain.unsent_outbox})"
    )
    lines += [f"warning: {p}" for p in result.problems]
    lines.append("OK" if result.ok else "FAILED: accepted commands were lost or applied twice")
    return "\n".join(lines)
