"""The SQL behind the dashboard: command outcomes, the outbox backlog, failing webhooks."""

from __future__ import annotations

from sqlalchemy import text

from taskstream.db import Repository
from taskstream.ops.schemas import CommandCounts, FailingWebhook, OutboxOut

# The partial index on unsent rows answers both without reading sent ones.
_OUTBOX = text(
    "SELECT count(*) AS backlog,"
    " extract(epoch FROM now() - (SELECT created_at FROM outbox WHERE sent_at IS NULL"
    "  ORDER BY id LIMIT 1)) AS oldest_age_s"
    " FROM outbox WHERE sent_at IS NULL"
)
_COMMANDS = text("SELECT status::text AS status, count(*) AS n FROM command_statuses GROUP BY 1")
# Endpoints with deliveries retrying or dead in the last day, the most recent failure first.
_FAILING_WEBHOOKS = text(
    "SELECT s.id, s.project_id, s.url, s.active,"
    " count(*) FILTER (WHERE d.status = 'retrying') AS retrying,"
    " count(*) FILTER (WHERE d.status = 'dead') AS dead,"
    " max(d.updated_at) AS last_failure_at,"
    " (array_agg(d.last_status_code ORDER BY d.updated_at DESC))[1] AS last_status_code,"
    " (array_agg(d.last_error ORDER BY d.updated_at DESC))[1] AS last_error"
    " FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id"
    " WHERE d.status IN ('retrying', 'dead') AND d.updated_at > now() - interval '1 day'"
    " GROUP BY s.id ORDER BY last_failure_at DESC LIMIT :limit"
)


class OpsRepository(Repository):
    async def command_counts(self) -> CommandCounts:
        rows = (await self.session.execute(_COMMANDS)).all()
        counts = {row.status: int(row.n) for row in rows}
        return CommandCounts(applied=counts.get("applied", 0), rejected=counts.get("rejected", 0))

    async def outbox(self) -> OutboxOut:
        row = (await self.session.execute(_OUTBOX)).one()
        age = None if row.oldest_age_s is None else round(float(row.oldest_age_s), 1)
        return OutboxOut(backlog=int(row.backlog), oldest_age_s=age)

    async def failing_webhooks(self, limit: int = 50) -> list[FailingWebhook]:
        rows = (await self.session.execute(_FAILING_WEBHOOKS, {"limit": limit})).all()
        return [
            FailingWebhook(
                subscription_id=r.id,
                project_id=r.project_id,
                url=r.url,
                active=r.active,
                retrying=int(r.retrying),
                dead=int(r.dead),
                last_failure_at=r.last_failure_at,
                last_status_code=r.last_status_code,
                last_error=(r.last_error or "")[:300] or None,
            )
            for r in rows
        ]
