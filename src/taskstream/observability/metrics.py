"""Every Prometheus series taskstream exports, defined once, and how a process renders them.

Each process kind fills its own share (the API: HTTP, rate limits, publishes, SSE; the consumer:
batches, outcomes, lag; the relay: outbox, publishes, confirms; the workers: deliveries,
retries, dead letters, webhooks, email); the others stay at zero or absent. Hot paths count per
batch, not per row.

Under ``taskstream api --workers N`` every worker process writes its values to memory-mapped
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's own contract, read by the library at
import, which is why it is an environment variable and not a setting); ``/metrics`` in any
worker merges them all. The directory is emptied by each API start
(``metrics_dir.prepare_multiprocess_dir``), and the files of live gauges of processes that have died
are dropped on scrape (:func:`render`), so a crashed worker's open SSE streams stop counting.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from taskstream.observability.metrics_dir import MULTIPROC_ENV

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# Seconds: a 202 takes ~1-20 ms, an apply batch 10 ms-2 s, a relay confirm 5-500 ms.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# --- API --------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "taskstream_http_requests",
    "HTTP responses by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "taskstream_http_request_duration_seconds",
    "Time from routing to the response head, by route template, method and status",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
RATE_LIMIT_DECISIONS = Counter(
    "taskstream_rate_limit_decisions",
    "Rate-limit decisions by limit kind (member, admin, anonymous, login ...) and decision",
    ["limit", "decision"],
)
PUBLISHED_COMMANDS = Counter(
    "taskstream_kafka_published_commands",
    "Task commands the broker acknowledged (acks=all)",
)
PUBLISH_FAILURES = Counter(
    "taskstream_kafka_publish_failures",
    "Publish calls answered 503: broker not connected, timed out, or refused",
    ["reason"],
)
PUBLISH_LATENCY = Histogram(
    "taskstream_kafka_publish_duration_seconds",
    "One publish call (one command or a batch) until every acknowledgement",
    buckets=LATENCY_BUCKETS,
)
SSE_STREAMS_OPEN = Gauge(
    "taskstream_sse_streams_open",
    "Live notification streams held open",
    multiprocess_mode="livesum",
)

# --- stream consumer --------------------------------------------------------------------------

CONSUMER_BATCHES = Counter(
    "taskstream_consumer_batches", "Batches applied and committed (per apply lane)"
)
CONSUMER_BATCH_SIZE = Histogram(
    "taskstream_consumer_batch_size",
    "Messages per applied batch (per apply lane)",
    buckets=BATCH_SIZE_BUCKETS,
)
CONSUMER_APPLY_LATENCY = Histogram(
    "taskstream_consumer_apply_duration_seconds",
    "One lane's batch from the start of its apply to its offset commit, retries included",
    buckets=LATENCY_BUCKETS,
)
CONSUMER_COMMANDS = Counter(
    "taskstream_consumer_commands",
    "Task commands by outcome: applied, rejected, duplicate, dead_lettered",
    ["outcome"],
)
CONSUMER_LAG = Gauge(
    "taskstream_consumer_lag",
    "Messages behind the partition's high watermark, per partition this member owns",
    ["partition"],
    multiprocess_mode="liveall",
)
CONSUMER_REBALANCES = Counter(
    "taskstream_consumer_rebalances", "Partition assignments received (one per rebalance)"
)

# --- attachment processor ---------------------------------------------------------------------

# Seconds: a stage of a small file takes milliseconds, a 20 MB scan or re-encode seconds.
STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
ATTACHMENTS_PROCESSED = Counter(
    "taskstream_attachments_processed",
    "attachment.uploaded commands settled, by final state: stored, quarantined, failed, gone"
    " (the attachment was deleted or never existed)",
    ["state"],
)
ATTACHMENT_STAGE_DURATION = Histogram(
    "taskstream_attachment_stage_duration_seconds",
    "One attempt at one processing stage of one attachment (received: the move to"
    " scanning; scanning; deduplicating; compressing: compress, move and mark stored)",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
ATTACHMENT_SCAN_FAILURES = Counter(
    "taskstream_attachment_scan_failures",
    "clamd scans without a verdict: unavailable (the attachment waits and retries),"
    " refused (clamd rejected the file: the attachment fails)",
    ["reason"],
)
ATTACHMENT_COMMANDS_DEAD_LETTERED = Counter(
    "taskstream_attachment_commands_dead_lettered",
    "Undecodable attachment commands copied to the attachment dead-letter topic",
)

# --- outbox relay -----------------------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "taskstream_outbox_backlog",
    "Outbox rows not yet relayed",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_AGE = Gauge(
    "taskstream_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox row not yet relayed (0 when none)",
    multiprocess_mode="mostrecent",
)
RELAY_PUBLISHED = Counter(
    "taskstream_relay_published_events",
    "Outbox events handed to both brokers (RabbitMQ publish and Kafka produce)",
)
RELAY_CONFIRMED = Counter(
    "taskstream_relay_confirmed_events",
    "Outbox events confirmed by RabbitMQ and acknowledged by Kafka, then marked sent",
)
RELAY_FAILURES = Counter(
    "taskstream_relay_failures",
    "Relay rounds that failed and backed off (broker or database unavailable)",
)
RELAY_CONFIRM_LATENCY = Histogram(
    "taskstream_relay_confirm_duration_seconds",
    "One batch from its publish to its last confirm or acknowledgement",
    buckets=LATENCY_BUCKETS,
)

# --- notification workers ---------------------------------------------------------------------

WORKER_DELIVERIES = Counter(
    "taskstream_worker_deliveries",
    "RabbitMQ deliveries received, by notification channel",
    ["channel"],
)
WORKER_RETRIES = Counter(
    "taskstream_worker_retries",
    "Deliveries sent round again: requeued after a transient failure or a webhook retry",
    ["channel"],
)
WORKER_DEAD_LETTERS = Counter(
    "taskstream_worker_dead_letters",
    "Messages copied to the dead-letter queue, by notification channel",
    ["channel"],
)
QUEUE_MESSAGES = Gauge(
    "taskstream_rabbitmq_queue_messages",
    "Messages ready in a notification queue (in_app, webhook, email) or the dead-letter queue "
    "(dlq), as a worker saw it on scrape; every worker reports it, so take the max",
    ["queue"],
    multiprocess_mode="mostrecent",
)
WEBHOOK_ATTEMPTS = Counter(
    "taskstream_webhook_attempts",
    "Webhook POSTs by outcome: delivered, http_error, timeout, failed (connection, refused)",
    ["outcome"],
)
EMAIL_SENDS = Counter(
    "taskstream_email_sends",
    "Email notification events by outcome: sent, transient_failure, failed",
    ["outcome"],
)

# --- every process ----------------------------------------------------------------------------

DEPENDENCY_UP = Gauge(
    "taskstream_dependency_up",
    "1 when the process's own check of a dependency succeeded, else 0",
    ["dependency"],
    multiprocess_mode="mostrecent",
)


def metric_names() -> set[str]:
    """The names of every series this module defines, as they appear on a scrape (counters
    with ``_total``, histograms with ``_bucket``/``_sum``/``_count``)."""
    names: set[str] = set()
    for value in globals().values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names.update(f"{value._name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


# --- exposition -------------------------------------------------------------------------------


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


_LIVE_GAUGE_FILE: Final = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _drop_dead_processes(directory: str) -> None:
    """Forget the live gauges of processes that are gone (a worker that crashed never said
    goodbye); counters and histograms of dead processes keep counting, as they should."""
    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        found = _LIVE_GAUGE_FILE.search(path)
        if found:
            pids.add(int(found.group(1)))
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_this_process_dead() -> None:
    """On a clean exit of a multi-process worker: drop its live gauges now."""
    directory = _multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)


def render() -> bytes:
    """The text exposition of this process, or of every process sharing the multi-process
    directory."""
    directory = _multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    _drop_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)
