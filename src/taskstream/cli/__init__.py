"""The `taskstream` command. Each area registers its subcommands from its own module."""

from __future__ import annotations

import click

from taskstream.cli import config, consume, dlq, infra, loadtest, serve, work
from taskstream.cli.logs import configure_logging
from taskstream.settings import get_settings


@click.group()
def main() -> None:
    """taskstream: high-volume task ingestion through Kafka."""
    configure_logging(get_settings())


for module in (config, infra, serve, consume, dlq, work, loadtest):
    module.register(main)
