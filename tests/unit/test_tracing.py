"""Trace context: W3C traceparent, the legacy bare ids already on topics and in the outbox,
and the log lines that carry them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid

import pytest

from taskstream.cli.logs import logging_config
from taskstream.observability.tracing import (
    TraceContext,
    context_from_headers,
    context_from_mapping,
    log_context,
    log_fields,
    trace_headers,
)
from taskstream.settings import Settings

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_traceparent_round_trips() -> None:
    context = TraceContext.parse(f"00-{TRACE}-{PARENT}-01")
    assert context == TraceContext(TRACE, PARENT, sampled=True)
    assert context.traceparent == f"00-{TRACE}-{PARENT}-01"
    child = context.child()
    assert child.trace_id == TRACE and child.span_id != PARENT
    assert TraceContext.parse(f"00-{TRACE}-{PARENT}-00").sampled is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent
        f"ff-{TRACE}-{PARENT}-01",  # forbidden version
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper case
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        "not a trace id!",
        "",
    ],
)
def test_invalid_contexts_are_refused(value: str) -> None:
    assert TraceContext.parse(value) is None


def test_legacy_ids_keep_their_trace() -> None:
    """Records written before carry ``x-trace-id``: 32 hex digits are the trace id itself; a
    client's own token maps to the same trace id every time."""
    assert TraceContext.parse(TRACE).trace_id == TRACE  # type: ignore[union-attr]
    first, second = TraceContext.parse("req-42"), TraceContext.parse("req-42")
    assert first is not None and first == second and len(first.trace_id) == 32
    assert context_from_headers([("x-trace-id", TRACE.encode())]).trace_id == TRACE  # type: ignore[union-attr]


def test_kafka_and_amqp_headers_carry_both_forms() -> None:
    headers = trace_headers(f"00-{TRACE}-{PARENT}-01")
    assert dict(headers) == {
        "traceparent": f"00-{TRACE}-{PARENT}-01".encode(),
        "x-trace-id": TRACE.encode(),  # readers that only know the old header
    }
    assert context_from_headers(headers) == TraceContext(TRACE, PARENT)
    # traceparent wins over the legacy header
    mixed = [("x-trace-id", b"f" * 32), ("traceparent", f"00-{TRACE}-{PARENT}-01".encode())]
    assert context_from_headers(mixed).trace_id == TRACE  # type: ignore[union-attr]
    assert context_from_mapping({"x-trace-id": TRACE}).trace_id == TRACE  # type: ignore[union-attr]
    assert trace_headers(None) == [] and context_from_headers(None) is None


def _capture(settings: Settings) -> tuple[logging.Logger, io.StringIO]:
    config = logging_config(settings, "consume")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter_config = dict(config["formatters"]["line"])
    factory = formatter_config.pop("()")
    module, _, name = factory.rpartition(".")
    handler.setFormatter(getattr(sys.modules[module], name)(**formatter_config))
    filter_factory = config["filters"]["context"]["()"]
    module, _, name = filter_factory.rpartition(".")
    handler.addFilter(getattr(sys.modules[module], name)())
    logger = logging.getLogger(f"test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_request_command_and_trace_ids() -> None:
    logger, stream = _capture(Settings(environment="test", log_format="json"))
    trace = TraceContext(TRACE, PARENT)
    command_id = uuid.uuid4()
    with log_context(trace, command_id=command_id, request_id="req-1"):
        logger.info("applied %d", 3)
    other = TraceContext.new()
    logger.debug("relayed", extra=log_fields(other))  # a record's own fields win
    logger.warning("outside any context")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "applied 3" and first["component"] == "consume"
    assert (first["trace_id"], first["span_id"]) == (TRACE, PARENT)
    assert (first["command_id"], first["request_id"]) == (str(command_id), "req-1")
    assert second["trace_id"] == other.trace_id and "command_id" not in second
    assert "trace_id" not in third and third["level"] == "WARNING"


def test_text_lines_name_the_trace() -> None:
    logger, stream = _capture(Settings(environment="test", log_format="text"))
    with log_context(TraceContext(TRACE, PARENT), command_id="c-1"):
        logger.info("applied")
    assert stream.getvalue().rstrip().endswith(f"applied [command_id=c-1 trace_id={TRACE}]")


def test_client_libraries_are_quiet_at_info() -> None:
    loggers = logging_config(Settings(environment="test", log_level="DEBUG"), "work")["loggers"]
    for name in ("httpx", "httpcore", "aiokafka", "pika"):
        assert loggers[name]["level"] == logging.WARNING


def test_no_trace_export_without_an_endpoint() -> None:
    """Without an endpoint neither the tracing SDK nor the exporter is imported, in the API or
    the stream processes (redis-py imports the metrics SDK on its own when it is installed)."""
    code = (
        "import sys\n"
        "from taskstream.observability import telemetry\n"
        "from taskstream.app import create_app\n"
        "from taskstream.settings import Settings\n"
        "import taskstream.consumers.task_commands, taskstream.workers.relay\n"
        "import taskstream.workers.webhook_dispatch, taskstream.cli\n"
        "create_app(Settings(environment='test'))\n"
        "with telemetry.span('x', None) as trace: pass\n"
        "assert not telemetry.enabled()\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace',\n"
        "    'opentelemetry.exporter'))]\n"
        "assert not loaded, loaded\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
