"""`taskstream projects purge-deleted`: hard-delete projects past their restore grace period."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click

from taskstream.settings import Settings, get_settings


@click.group("projects")
def projects() -> None:
    """Projects."""


@projects.command("purge-deleted")
@click.option(
    "--grace-days",
    type=click.IntRange(min=0),
    default=None,
    help="override projects.delete_grace_days",
)
def purge_deleted(grace_days: int | None) -> None:
    """Hard-delete the projects deleted longer than the grace period ago, with their tasks,
    members, invitations, stats and webhooks. Safe to run from cron and concurrently (each
    batch skips the rows another run holds)."""
    settings = get_settings()
    days = settings.projects.delete_grace_days if grace_days is None else grace_days
    purged = asyncio.run(_purge(settings, timedelta(days=days)))
    click.echo(f"purged {purged} project(s) deleted more than {days} day(s) ago")


async def _purge(settings: Settings, grace: timedelta) -> int:
    from taskstream.db import create_engine, create_session_factory  # noqa: PLC0415
    from taskstream.projects.lifecycle import purge_deleted as purge_batch  # noqa: PLC0415

    engine = create_engine(settings.db)
    total = 0
    try:
        sessions = create_session_factory(engine)
        while True:
            async with sessions() as session:
                batch = await purge_batch(session, grace)
                await session.commit()
            total += len(batch)
            if not batch:
                return total
    finally:
        await engine.dispose()


def register(main: click.Group) -> None:
    main.add_command(projects)
