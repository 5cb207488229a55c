"""`taskstream api` serves the HTTP API; `taskstream run` runs the whole system."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from taskstream.cli.logs import logging_config
from taskstream.settings import get_settings

# Every long-running process `taskstream run` supervises: one `taskstream <argv>` each.
RUN_COMPONENTS: list[list[str]] = [
    ["api"],
    ["consume"],
    ["relay"],
    ["work"],
    ["process-attachments"],
]


@click.command("api")
@click.option("--workers", type=int, default=None, help="defaults to TASKSTREAM_API__WORKERS")
@click.option("--port", type=int, default=None)
@click.option(
    "--factory",
    default="taskstream.app:create_app",
    show_default=True,
    help="app factory (module:function); the API benchmark serves its own",
)
def api(workers: int | None, port: int | None, factory: str) -> None:
    """Serve the Litestar API with granian."""
    from granian.constants import Interfaces, Loops  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    from taskstream.observability.metrics_dir import prepare_multiprocess_dir  # noqa: PLC0415

    config = get_settings()
    settings = config.api
    port = port or settings.port
    # Granian's worker processes share one metrics directory, emptied at every start; one per
    # port, so two APIs started from the same directory keep separate counts.
    prepare_multiprocess_dir(config.infra.state_dir.resolve() / "metrics" / f"api-{port}")
    Server(
        factory,
        factory=True,
        address=settings.host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers or settings.workers,
        loop=Loops.uvloop,
        # granian applies this in every worker process: the same lines as the other processes
        log_dictconfig=logging_config(config, "api"),
        log_access=False,
        backpressure=512,
    ).serve()


@click.command("run")
def run() -> None:
    """Run API, consumers, relay and workers; stop them all on Ctrl-C / SIGTERM."""
    children = [
        subprocess.Popen([sys.executable, "-m", "taskstream", *argv])  # noqa: S603
        for argv in RUN_COMPONENTS
    ]
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.5)
    _stop(signal.SIGTERM, None)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
    failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM)]
    raise SystemExit(1 if failed and not stopping else 0)


def register(main: click.Group) -> None:
    main.add_command(api)
    main.add_command(run)
