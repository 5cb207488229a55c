"""The `taskstream` command. Each area registers its subcommands from its own module."""

from __future__ import annotations

from importlib import metadata

import click

from taskstream.cli import (
    attachments,
    config,
    consume,
    dlq,
    infra,
    loadtest,
    projects,
    serve,
    status,
    users,
    work,
)
from taskstream.cli.logs import configure_logging
from taskstream.observability import telemetry
from taskstream.settings import get_settings

# Long-running processes that export spans when an OTLP endpoint is configured (the API's
# granian workers start their own exporter in create_app).
TRACED_COMMANDS = frozenset({"consume", "relay", "work", "process-attachments"})


def _version() -> str:
    try:
        return metadata.version("taskstream")
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "unknown"


@click.group()
@click.version_option(_version(), prog_name="taskstream")
@click.pass_context
def main(ctx: click.Context) -> None:
    """taskstream: high-volume task ingestion through Kafka."""
    settings = get_settings()
    component = ctx.invoked_subcommand or ""
    configure_logging(settings, component)
    if component in TRACED_COMMANDS:
        telemetry.configure_tracing(settings.otel, component)


for module in (
    config,
    infra,
    serve,
    consume,
    dlq,
    work,
    users,
    projects,
    status,
    loadtest,
    attachments,
):
    module.register(main)
