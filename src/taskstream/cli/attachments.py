"""`taskstream process-attachments`: one member of the attachment processing group (scale by
starting more); `taskstream attachments orphans`: objects no row or session needs."""

from __future__ import annotations

import asyncio

import click

from taskstream.cli.running import run_until_signal
from taskstream.settings import get_settings

# A row still `received` this long after its upload has most likely lost its command: the API
# publishes within kafka.publish_timeout_s of the commit, and the processor picks it up next.
DEFAULT_STALE_AFTER_S = 600


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
@click.option(
    "--delete", "remove", is_flag=True, help="Delete the orphans and settle the stale rows."
)
@click.option(
    "--stale-after",
    type=click.IntRange(min=1),
    default=DEFAULT_STALE_AFTER_S,
    show_default=True,
    help="Seconds after which a row still `received` counts as stale.",
)
def orphans(remove: bool, stale_after: int) -> None:
    """List staging, part, blob and quarantine objects that no attachment row or live upload
    session needs (older than attachments.upload_session_ttl_s), and rows stuck `received`
    (their command never reached Kafka). --delete removes the objects, publishes the stuck
    rows' command again when their staged bytes are complete, and fails the others."""
    from taskstream.attachments.orphans import find_orphans  # noqa: PLC0415
    from taskstream.errors import UnavailableError  # noqa: PLC0415

    settings = get_settings()
    try:
        report = asyncio.run(find_orphans(settings, delete=remove, stale_after_s=stale_after))
    except UnavailableError as error:
        raise click.ClickException(
            f"{error}: stopped before every stale row was requeued; run it again"
        ) from error
    for item in report.objects:
        click.echo(f"{'deleted' if remove else 'orphan'}  {item.key}  {item.size}")
    for attachment_id in report.requeued:
        click.echo(
            f"{'requeued' if remove else 'stale'}  attachment {attachment_id}"
            " (never queued; staged bytes complete: its command is sent again)"
        )
    for attachment_id in report.lost:
        click.echo(
            f"{'failed' if remove else 'lost'}  attachment {attachment_id}"
            " (never queued; staged bytes missing: it fails)"
        )
    click.echo(
        f"{len(report.objects)} orphaned object(s), {report.orphan_bytes} bytes;"
        f" {len(report.requeued)} row(s) to requeue, {len(report.lost)} row(s) lost"
    )


def register(main: click.Group) -> None:
    main.add_command(process_attachments)
    main.add_command(attachments_group)
