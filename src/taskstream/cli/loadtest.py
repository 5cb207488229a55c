"""`taskstream loadtest seed|token|verify|run|ui`: provision users for locust, drive the
scenarios in loadtest/, and prove that every accepted command was applied exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.loadtesting.seed import SeedPlan
from taskstream.settings import Settings, get_settings

RESULTS_DIR = Path("loadtest/results")
T = TypeVar("T")


def _with_sessions(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    from taskstream.db import create_engine, create_session_factory  # noqa: PLC0415

    async def main() -> T:
        engine = create_engine(settings.db, pool_size=2, max_overflow=0)
        try:
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def seed_run_dir(settings: Settings, results: Path, plan: SeedPlan) -> Path:
    """Seed (idempotently) and write the run's credentials file; returns the run directory."""
    from taskstream.auth.tokens import TokenCodec  # noqa: PLC0415
    from taskstream.loadtesting.run_files import write_credentials  # noqa: PLC0415
    from taskstream.loadtesting.seed import seed_password, seed_run  # noqa: PLC0415

    if settings.environment == "production":
        raise click.ClickException("refusing to seed load-test users into production")
    password = seed_password(settings.auth.jwt_secret.get_secret_value(), plan.run_id)
    with click.progressbar(
        length=plan.users + plan.projects, label=f"seeding {plan.run_id}"
    ) as bar:
        credentials = _with_sessions(
            settings,
            lambda sessions: seed_run(
                sessions, TokenCodec(settings.auth), plan, password, bar.update
            ),
        )
    run_dir = results / plan.run_id
    write_credentials(run_dir, credentials)
    latest = results / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(plan.run_id)
    return run_dir


@click.group("loadtest")
def loadtest() -> None:
    """Provision, drive and verify load tests (locust scenarios in loadtest/)."""


results_option = click.option(
    "--results-dir", type=click.Path(path_type=Path), default=RESULTS_DIR, show_default=True
)


@loadtest.command("seed")
@click.option("--users", type=click.IntRange(1), default=20, show_default=True)
@click.option("--projects", type=click.IntRange(0), default=5, show_default=True)
@click.option("--members-per-project", type=click.IntRange(0), default=3, show_default=True)
@click.option("--run-id", default=None, help="seed this run again (default: a new run id)")
@results_option
def seed(
    *, users: int, projects: int, members_per_project: int, run_id: str | None, results_dir: Path
) -> None:
    """Create users, team projects and memberships through the services (no registration,
    no rate limits) and write RUN_DIR/credentials.json; idempotent per run id."""
    plan = SeedPlan(run_id or new_run_id(), users, projects, members_per_project)
    run_dir = seed_run_dir(get_settings(), results_dir, plan)
    click.echo(run_dir)


@loadtest.command("token")
@click.option("--user", "email", default=None, help="any active user (default: the first seeded)")
@click.option("--run-dir", type=click.Path(path_type=Path), default=RESULTS_DIR / "latest")
@click.option(
    "--count",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="one token per line for the first N seeded users (the rate limit is per user)",
)
def token(email: str | None, run_dir: Path, count: int) -> None:
    """Print a fresh bearer access token (for wrk, autocannon, curl)."""
    from taskstream.auth.repository import UserRepository  # noqa: PLC0415
    from taskstream.auth.service import start_session  # noqa: PLC0415
    from taskstream.auth.tokens import TokenCodec  # noqa: PLC0415
    from taskstream.loadtesting.run_files import read_credentials  # noqa: PLC0415

    settings = get_settings()
    if email is not None:
        emails = [email]
    elif (run_dir / "credentials.json").exists():
        emails = [u.email for u in read_credentials(run_dir).users[:count]]
    else:
        raise click.ClickException("no seeded run: `taskstream loadtest seed` first")

    async def issue(sessions: async_sessionmaker[AsyncSession]) -> list[str | None]:
        tokens: list[str | None] = []
        for address in emails:
            async with sessions() as session:
                user = await UserRepository.from_session(session).get_active_by_email(address)
                pair = None if user is None else await start_session(session, codec, user)
                tokens.append(None if pair is None else pair.access_token)
        return tokens

    codec = TokenCodec(settings.auth)
    for address, access in zip(emails, _with_sessions(settings, issue), strict=True):
        if access is None:
            raise click.ClickException(f"no active user {address}")
        click.echo(access)


def verify_run_dir(settings: Settings, run_dir: Path, timeout_s: float) -> tuple[bool, str]:
    """Drain, verify, write RUN_DIR/verification.{json,txt}; (ok, summary)."""
    from taskstream.loadtesting import run_files  # noqa: PLC0415
    from taskstream.loadtesting.verify import (  # noqa: PLC0415
        Verification,
        summary,
        verify_commands,
        wait_drained,
    )

    async def check(sessions: async_sessionmaker[AsyncSession]) -> Verification:
        drain = await wait_drained(settings, sessions, timeout_s)
        return await verify_commands(sessions, run_files.read_recorded(run_dir), drain)

    result = _with_sessions(settings, check)
    text = summary(result)
    (run_dir / run_files.VERIFICATION_JSON).write_bytes(
        msgspec.json.format(msgspec.json.encode(result.as_dict()))
    )
    (run_dir / run_files.VERIFICATION_TEXT).write_text(text + "\n")
    return result.ok, text


@loadtest.command("verify")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--timeout", type=float, default=120.0, show_default=True, help="drain wait (s)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON instead of the summary")
def verify(run_dir: Path, timeout: float, as_json: bool) -> None:
    """Wait for the pipeline to drain, then check every recorded command: applied once,
    rejected (reasons grouped), missing or duplicated. Exit 1 if any is missing or
    duplicated."""
    ok, text = verify_run_dir(get_settings(), run_dir, timeout)
    click.echo((run_dir / "verification.json").read_text() if as_json else text)
    raise SystemExit(0 if ok else 1)


def register(main: click.Group) -> None:
    from taskstream.cli.loadtest_run import register_run  # noqa: PLC0415

    register_run(loadtest)
    main.add_command(loadtest)
