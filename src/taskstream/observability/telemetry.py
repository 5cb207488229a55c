"""OpenTelemetry spans, exported over OTLP/HTTP only when an endpoint is configured.

Without ``TASKSTREAM_OTEL__ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``) nothing here imports
OpenTelemetry: ``span`` only hands out a child ``TraceContext`` (a few random bytes), so the
trace context still travels and reaches the logs at no further cost. With an endpoint each
process exports its spans in batches (``BatchSpanProcessor``: the hot path only appends to a
queue) under the service name ``<service_name>-<component>``.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from taskstream.observability.tracing import TraceContext
from taskstream.settings import OtelSettings

log = logging.getLogger(__name__)

SpanKind = Literal["server", "client", "producer", "consumer", "internal"]

_tracer: Any = None  # an opentelemetry Tracer once enabled


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(settings: OtelSettings, component: str) -> bool:
    """Start exporting this process's spans if an endpoint is configured; True if so."""
    global _tracer  # noqa: PLW0603  # one tracer per process, set at start
    if not settings.endpoint or _tracer is not None:
        return _tracer is not None
    # Imported here so that a process without an endpoint never loads the SDK.
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.trace.sampling import (  # noqa: PLC0415
            ParentBased,
            TraceIdRatioBased,
        )
    except ImportError as exc:
        raise RuntimeError(
            f"an OTLP endpoint is configured ({settings.endpoint}) but the OpenTelemetry SDK "
            "is not installed: pip install 'taskstream[otel]'"
        ) from exc

    endpoint = settings.endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"{settings.service_name}-{component}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    atexit.register(provider.shutdown)  # flush what is queued on a clean exit
    _tracer = provider.get_tracer("taskstream")
    log.info("exporting traces to %s", endpoint)
    return True


@contextmanager
def span(
    name: str,
    parent: TraceContext | None,
    *,
    kind: SpanKind = "internal",
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[TraceContext]:
    """A span under ``parent`` (a new trace without one); yields its context, the parent of
    whatever this work hands on. Without an exporter: a child context, nothing recorded."""
    if _tracer is None:
        yield parent.child() if parent is not None else TraceContext.new()
        return
    with _otel_span(name, parent, kind, attributes) as context:
        yield context


@contextmanager
def _otel_span(
    name: str,
    parent: TraceContext | None,
    kind: SpanKind,
    attributes: Mapping[str, str | int | float | bool] | None,
) -> Iterator[TraceContext]:
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.trace import TraceFlags  # noqa: PLC0415

    with _tracer.start_as_current_span(
        name,
        context=_remote_parent(parent),
        kind=trace.SpanKind[kind.upper()],
        attributes=attributes,
    ) as current:
        found = current.get_span_context()
        yield TraceContext(
            format(found.trace_id, "032x"),
            format(found.span_id, "016x"),
            bool(found.trace_flags & TraceFlags.SAMPLED),
        )


def record_span(
    name: str,
    parent: TraceContext | None,
    *,
    kind: SpanKind,
    start_ns: int | None = None,
    end_ns: int | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> TraceContext | None:
    """Record a finished span under ``parent`` (work done for many traces at once, such as
    one command of an applied batch, or one message of a published batch) and return its
    context to hand on; without an exporter nothing is recorded and ``parent`` is returned."""
    if _tracer is None:
        return parent
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.trace import TraceFlags  # noqa: PLC0415

    span_ = _tracer.start_span(
        name,
        context=_remote_parent(parent),
        kind=trace.SpanKind[kind.upper()],
        attributes=attributes,
        start_time=start_ns,
    )
    span_.end(end_time=end_ns)
    found = span_.get_span_context()
    return TraceContext(
        format(found.trace_id, "032x"),
        format(found.span_id, "016x"),
        bool(found.trace_flags & TraceFlags.SAMPLED),
    )


def _remote_parent(parent: TraceContext | None) -> Any:
    """An OpenTelemetry context whose current span is ``parent`` (None: a new trace)."""
    if parent is None:
        return None
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags  # noqa: PLC0415

    remote = SpanContext(
        int(parent.trace_id, 16),
        int(parent.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else 0),
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))
