"""Process-wide logging, the same in every `taskstream` process (API workers included).

``TASKSTREAM_LOG_FORMAT=json``: one JSON object per line with ``ts``, ``level``, ``logger``,
``component`` (api, consume, relay, work ...), ``pid``, ``message`` and, when known,
``request_id``, ``command_id``, ``trace_id`` and ``span_id`` (from the context variables of
``taskstream.observability.tracing`` or a record's ``extra``), plus ``exc`` with the
traceback. ``text`` (the default) writes the same facts on one readable line.

Client libraries that log every request or rebalance step at INFO (httpx, httpcore, aiokafka,
pika, granian's access log) are held at WARNING whatever the level.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Final

from taskstream.observability.tracing import current_command_id, current_request_id, current_trace
from taskstream.settings import Settings

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
CONTEXT_FIELDS: Final = ("request_id", "command_id", "trace_id", "span_id")
QUIET_LOGGERS: Final = ("httpx", "httpcore", "aiokafka", "pika", "granian.access")
# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    *CONTEXT_FIELDS,
}


class ContextFilter(logging.Filter):
    """Copies the current request id, command id and trace onto the record (``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if "request_id" not in fields:
            record.request_id = current_request_id.get()
        if "command_id" not in fields:
            record.command_id = current_command_id.get()
        if "trace_id" not in fields:
            trace = current_trace.get()
            record.trace_id = trace.trace_id if trace is not None else None
            record.span_id = trace.span_id if trace is not None else None
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str = "") -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "component": self.component,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name not in line:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, component: str = "") -> None:
        super().__init__(TEXT_FORMAT)
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if name != "span_id" and (value := getattr(record, name, None)) is not None
        ]
        if not known:
            return text
        head, newline, rest = text.partition("\n")  # keep a traceback below the line
        return f"{head} [{' '.join(known)}]{newline}{rest}"


def logging_config(settings: Settings, component: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a process (granian applies it in its workers)."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    quiet = max(logging.WARNING, level)
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {
            "line": {
                "()": f"{formatter.__module__}.{formatter.__qualname__}",
                "component": component,
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            # granian's own logger writes through ours (same format, same stream)
            "_granian": {"level": level, "handlers": [], "propagate": True},
            **{name: {"level": quiet, "handlers": [], "propagate": True} for name in QUIET_LOGGERS},
        },
    }


def configure_logging(settings: Settings, component: str = "") -> None:
    """Configure the root logger once per process (CLI entry point)."""
    logging.config.dictConfig(logging_config(settings, component))
