"""The `taskstream` command. Each area registers its subcommands from its own module."""

from __future__ import annotations

import click

from taskstream.cli import config, consume, dlq, infra, serve, work


@click.group()
def main() -> None:
    """taskstream: high-volume task ingestion through Kafka."""


for module in (config, infra, serve, consume, dlq, work):
    module.register(main)
