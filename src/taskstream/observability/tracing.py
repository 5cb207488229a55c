"""Trace context: one W3C ``traceparent`` follows a command from HTTP to webhook.

The API starts (or continues, from the client's ``traceparent``) a trace per request and the
context travels as its ``traceparent`` string: in the Kafka command headers, the outbox row and
the event (``DomainEvent.trace_id``), the RabbitMQ and Kafka event headers and the webhook
request. Wherever the code names a ``trace_id`` string it holds that trace context.

Records written before carry a bare id (``x-trace-id``: 32 hex digits, or a client's own
token); ``TraceContext.parse`` accepts those too, so a command or event already on a topic or
in the outbox keeps its trace. Producers still write ``x-trace-id`` (the 32-hex trace id) next
to ``traceparent`` for readers that only know the old header.

Log lines take the request id, command id and trace id from the context variables below
(``cli/logs.py``); a record's own ``extra`` wins over them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

TRACEPARENT_HEADER: Final = "traceparent"
LEGACY_TRACE_ID_HEADER: Final = "x-trace-id"

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACEPARENT_SHAPE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-", re.IGNORECASE)
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_LEGACY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context: the trace, the span that is the parent of what comes next."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    sampled: bool = True

    @classmethod
    def new(cls) -> TraceContext:
        """The root of a new trace."""
        return cls(os.urandom(16).hex(), os.urandom(8).hex())

    def child(self) -> TraceContext:
        """A new span in the same trace (what a process hands on as the parent)."""
        return TraceContext(self.trace_id, os.urandom(8).hex(), self.sampled)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @classmethod
    def parse(cls, value: str | bytes | None) -> TraceContext | None:
        """A ``traceparent``, or a bare trace id written by older versions; None if neither.

        A bare id of 32 hex digits is the trace id itself; any other well-formed token (a
        client's own ``X-Trace-Id``) maps to the same trace id every time (a hash of it)."""
        if not value:
            return None
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        text = text.strip()
        match = _TRACEPARENT.match(text)
        if match is not None:
            version, trace_id, span_id, flags, rest = match.groups()
            if version == "ff" or (version == "00" and rest):
                return None
            if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
                return None
            return cls(trace_id, span_id, bool(int(flags, 16) & 1))
        if _TRACEPARENT_SHAPE.match(text):
            return None  # a malformed traceparent is not a legacy id
        return cls.from_legacy_id(text)

    @classmethod
    def from_legacy_id(cls, text: str) -> TraceContext | None:
        """The context of an ``x-trace-id`` value (32 hex digits kept, other tokens hashed)."""
        if _HEX32.match(text) and text != _ZERO_TRACE:
            trace_id = text
        elif _LEGACY_ID.match(text):
            trace_id = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        else:
            return None
        # a parent span id derived from the trace id: stable, so records stay comparable
        return cls(trace_id, hashlib.blake2b(text.encode(), digest_size=8).hexdigest())


def trace_headers(traceparent: str | None) -> list[tuple[str, bytes]]:
    """Kafka headers carrying a trace context: ``traceparent`` and the legacy ``x-trace-id``."""
    context = TraceContext.parse(traceparent)
    if context is None:
        return []
    return [
        (TRACEPARENT_HEADER, context.traceparent.encode()),
        (LEGACY_TRACE_ID_HEADER, context.trace_id.encode()),
    ]


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> TraceContext | None:
    """The trace context of a Kafka record: ``traceparent`` first, else ``x-trace-id``."""
    traceparent: bytes | None = None
    legacy: bytes | None = None
    for key, value in headers or ():  # the last one wins, as in dict(headers)
        if key == TRACEPARENT_HEADER:
            traceparent = value
        elif key == LEGACY_TRACE_ID_HEADER:
            legacy = value
    return TraceContext.parse(traceparent) or TraceContext.parse(legacy)


def context_from_mapping(headers: Mapping[str, object] | None) -> TraceContext | None:
    """The trace context of AMQP (or HTTP) headers: ``traceparent`` first, else ``x-trace-id``."""
    if not headers:
        return None
    for key in (TRACEPARENT_HEADER, LEGACY_TRACE_ID_HEADER):
        value = headers.get(key)
        if isinstance(value, str | bytes):
            found = TraceContext.parse(value)
            if found is not None:
                return found
    return None


# --- what log lines are about ---------------------------------------------------------------

current_trace: ContextVar[TraceContext | None] = ContextVar("taskstream_trace", default=None)
current_request_id: ContextVar[str | None] = ContextVar("taskstream_request_id", default=None)
current_command_id: ContextVar[str | None] = ContextVar("taskstream_command_id", default=None)


@contextmanager
def log_context(
    trace: TraceContext | None = None,
    *,
    command_id: object | None = None,
    request_id: str | None = None,
) -> Iterator[None]:
    """Log lines inside this block carry the given trace, command and request ids."""
    trace_token = current_trace.set(trace) if trace is not None else None
    command_token = current_command_id.set(str(command_id)) if command_id is not None else None
    request_token = current_request_id.set(request_id) if request_id is not None else None
    try:
        yield
    finally:
        if request_token is not None:
            current_request_id.reset(request_token)
        if command_token is not None:
            current_command_id.reset(command_token)
        if trace_token is not None:
            current_trace.reset(trace_token)


def log_fields(
    trace: TraceContext | None = None, command_id: object | None = None
) -> dict[str, str]:
    """``extra=`` for one log line about a command or event that is not the current one."""
    fields: dict[str, str] = {}
    if trace is not None:
        fields["trace_id"] = trace.trace_id
        fields["span_id"] = trace.span_id
    if command_id is not None:
        fields["command_id"] = str(command_id)
    return fields
