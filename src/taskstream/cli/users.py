"""`taskstream users create-admin`: bootstrap (or promote) an administrator account."""

from __future__ import annotations

import asyncio

import click

from taskstream.settings import Settings, get_settings

PASSWORD_VARIABLE = "TASKSTREAM_ADMIN_PASSWORD"  # noqa: S105  # a variable name


@click.group("users")
def users() -> None:
    """User accounts."""


@users.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="Administrator", show_default=True, help="for a new account")
# hidden: documented as the environment variable; a password in argv is visible in `ps`
@click.option("--password", envvar=PASSWORD_VARIABLE, hidden=True, default=None)
def create_admin(email: str, name: str, password: str | None) -> None:
    """Create an administrator, or promote the existing account of ``--email`` (its password
    stays). The password of a new account comes from TASKSTREAM_ADMIN_PASSWORD or a prompt
    (never from the command line, which other users of the machine can read). Running it
    again changes nothing. A promoted user gets admin rights within 10 s (the API's user
    cache); a deactivated account is refused."""
    from taskstream.errors import ConflictError, ValidationFailedError  # noqa: PLC0415

    settings = get_settings()
    try:
        outcome = asyncio.run(_create_admin(settings, email, name, password))
    except ValidationFailedError as exc:
        problems = "; ".join(f"{e.path} {e.message}" for e in exc.errors)
        raise click.ClickException(problems) from exc
    except ConflictError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"{email}: administrator {outcome}")


async def _create_admin(settings: Settings, email: str, name: str, given: str | None) -> str:
    from taskstream.auth.repository import UserRepository  # noqa: PLC0415
    from taskstream.auth.service import create_admin as make_admin  # noqa: PLC0415
    from taskstream.db import create_engine, create_session_factory  # noqa: PLC0415

    engine = create_engine(settings.db)
    try:
        async with create_session_factory(engine)() as session:
            exists = await UserRepository.from_session(session).get_active_by_email(email)
            password = None if exists else _new_password(given)
            return await make_admin(session, email, name, password)
    finally:
        await engine.dispose()


def _new_password(given: str | None) -> str:
    if given:
        return given
    return str(
        click.prompt(
            "Password for the new administrator", hide_input=True, confirmation_prompt=True
        )
    )


def register(main: click.Group) -> None:
    main.add_command(users)
