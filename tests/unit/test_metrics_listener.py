"""The consume/relay/work listener: probes without I/O, metrics with on-demand gauges."""

from __future__ import annotations

import asyncio
import socket

import httpx

from taskstream.observability import metrics
from taskstream.observability.metrics_listener import ProcessListener, process_listener


async def test_the_listener_serves_probes_and_metrics() -> None:
    state = {"kafka": True, "postgres": True}
    refreshed = asyncio.Event()

    async def refresh() -> None:
        metrics.OUTBOX_BACKLOG.set(7)
        refreshed.set()

    async with process_listener("127.0.0.1", 0, lambda: state) as off:
        assert off is None  # 0: off
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with process_listener("127.0.0.1", port, lambda: state) as unused:
            assert unused is None  # taken: logged, and the process does its work without it

    listener = ProcessListener("127.0.0.1", 0, lambda: state, refresh)
    await listener.start()
    try:
        base = f"http://127.0.0.1:{listener.bound_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/health/live")).json() == {"status": "up"}
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"kafka": "up", "postgres": "up"}
            state["postgres"] = False
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {
                "status": "unavailable",
                "checks": {"kafka": "up", "postgres": "down"},
            }
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            assert refreshed.is_set()
            assert "taskstream_outbox_backlog 7.0" in scraped.text
            assert 'taskstream_dependency_up{dependency="postgres"} 0.0' in scraped.text
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        await listener.stop()
