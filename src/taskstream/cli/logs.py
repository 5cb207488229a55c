"""Process-wide logging: one line per record, level from settings."""

from __future__ import annotations

import logging

from taskstream.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Configure the root logger once per process (CLI entry point)."""
    logging.basicConfig(level=settings.log_level.upper(), format=FORMAT)
    # aiokafka logs every rebalance step at INFO; keep it for warnings and errors.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.root.level))
