"""`taskstream process-attachments`: one member of the attachment processing group (scale by
starting more); `taskstream attachments orphans`: objects no row or session needs."""

from __future__ import annotations

import asyncio

import click

from taskstream.cli.running import run_until_signal
from taskstream.settings import get_settings


@click.command("process-attachments")
def process_attachments() -> None:
    """Scan, deduplicate, compress and store uploaded attachments until SIGTERM/SIGINT."""
    from taskstream.consumers.attachments import run_attachment_processor  # noqa: PLC0415

    settings = get_settings()
    run_until_signal(lambda stop: run_attachment_processor(settings, stop))


@click.group("attachments")
def attachments_group() -> None:
    """Maintain the attachment store."""


@attachments_group.command("orphans")
@click.option("--delete", "remove", is_flag=True, help="Delete what is listed.")
def orphans(remove: bool) -> None:
    """List staging, part, blob and quarantine objects that no attachment row or live upload
    session needs (older than attachments.upload_session_ttl_s); --delete removes them."""
    from taskstream.attachments.orphans import find_orphans  # noqa: PLC0415

    settings = get_settings()
    report = asyncio.run(find_orphans(settings, delete=remove))
    for item in report.objects:
        click.echo(f"{'deleted' if remove else 'orphan'}  {item.key}  {item.size}")
    for attachment_id in report.stale_rows:
        click.echo(f"{'failed' if remove else 'stale'}  attachment {attachment_id} (never queued)")
    click.echo(
        f"{len(report.objects)} orphaned object(s), {report.orphan_bytes} bytes;"
        f" {len(report.stale_rows)} stale row(s)"
    )


def register(main: click.Group) -> None:
    main.add_command(process_attachments)
    main.add_command(attachments_group)
