"""One command's trace, followed through real processes: the client's ``traceparent`` reaches
the API, consumer, relay and worker logs (JSON lines), the webhook request and the spans each
process exports to an OTLP collector."""

from __future__ import annotations

import gzip
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from taskstream.settings import Settings
from tests.integration.notifications.conftest import Processes, env_for, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cleanup_rabbit")]
PASSWORD = "correct horse 42 battery"
COMPONENTS = {"api": ["api"], "consume": ["consume"], "relay": ["relay"], "work": ["work"]}


@dataclass
class OtlpCollector:
    """A local OTLP/HTTP endpoint keeping (service name, trace id) of every span received."""

    spans: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    found = OtlpCollector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    found.spans += [(service, s.trace_id.hex()) for s in scope_spans.spans]
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    found.server = server
    yield found
    server.shutdown()


def json_lines(log: str) -> list[dict]:
    """Every line of a process log, each a JSON object (fails on anything else)."""
    records = []
    for line in log.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON log line: {line!r}")
    return records


async def test_one_trace_id_from_http_to_webhook(
    system_settings: Settings, processes: Processes, receiver_factory, collector: OtlpCollector
) -> None:
    env = env_for(
        system_settings,
        TASKSTREAM_LOG_LEVEL="DEBUG",
        TASKSTREAM_LOG_FORMAT="json",
        TASKSTREAM_OTEL__ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export spans within 0.1 s, not 5 s
    )
    for name, argv in COMPONENTS.items():
        processes.start(name, argv, env)
    receiver = receiver_factory([200])
    trace_id = os.urandom(16).hex()
    traceparent = f"00-{trace_id}-{os.urandom(8).hex()}-01"

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{system_settings.api.port}", timeout=10
    ) as api:

        async def ready() -> bool:
            try:
                return (await api.get("/health/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, timeout=60, what="API ready")
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        registered = await api.post(
            "/auth/register", json={"name": "Owner", "email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = await api.post("/auth/login", json={"email": email, "password": PASSWORD})
        owner = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        project = await api.post("/projects", json={"name": "Traced"}, headers=owner)
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        hook = await api.post(
            f"/projects/{project_id}/webhooks",
            json={"url": receiver.url, "events": ["task.created"]},
            headers=owner,
        )
        assert hook.status_code == 201, hook.text

        created = await api.post(
            "/tasks",
            json={"title": "Follow me", "projectId": project_id},
            headers={**owner, "traceparent": traceparent},
        )
        assert created.status_code == 202, created.text
        assert created.headers["x-trace-id"] == trace_id
        command_id = created.json()["commandId"]

    async def webhook_received() -> bool:
        return bool(receiver.requests)

    await wait_for(webhook_received, timeout=60, what="the webhook request")
    headers = {k.lower(): v for k, v in receiver.requests[0][0].items()}
    assert headers["traceparent"].split("-")[1] == trace_id

    def traced_lines(name: str) -> list[dict]:
        return [r for r in json_lines(processes.log(name)) if r.get("trace_id") == trace_id]

    async def every_log_has_the_trace() -> list[str]:
        missing = [name for name in COMPONENTS if not traced_lines(name)]
        return [] if missing else ["all"]

    await wait_for(every_log_has_the_trace, timeout=30, what="the trace id in every log")
    api_lines = traced_lines("api")
    assert any(r.get("command_id") == command_id for r in api_lines), api_lines
    assert any(r.get("command_id") == command_id for r in traced_lines("consume"))
    for name in COMPONENTS:
        assert all(r["component"] == name for r in json_lines(processes.log(name)))
        # the webhook's HTTP client logs nothing per request at INFO
        assert not [r for r in json_lines(processes.log(name)) if r["logger"] == "httpx"]

    async def every_process_exported_a_span() -> set[str]:
        services = {service for service, trace in collector.spans if trace == trace_id}
        return services if len(services) == len(COMPONENTS) else set()

    services = await wait_for(every_process_exported_a_span, timeout=30, what="exported spans")
    assert services == {f"taskstream-{name}" for name in COMPONENTS}
