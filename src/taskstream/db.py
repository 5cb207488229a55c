"""Engine, session factory and the MetaData every model and migration shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum as PyEnum
from typing import Any, Self

import asyncpg
from sqlalchemy import DateTime, Enum, MetaData, func
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taskstream.settings import DatabaseSettings

# Stable constraint names so Alembic autogenerate and downgrades are deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def pg_enum(enum_cls: type[PyEnum], name: str) -> Enum:
    """A native PostgreSQL enum storing the members' values (lower-case), not their names."""
    return Enum(enum_cls, name=name, values_callable=lambda e: [m.value for m in e])


class Repository:
    """Base of every repository: SQL on the caller's session, inside the caller's transaction
    (a repository never commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    async def copy_rows(self, table: str, columns: Sequence[str], records: Sequence[Any]) -> None:
        """COPY rows into ``table`` on the session's own connection (same transaction): two to
        three times the rate of INSERT, for rows that can only be new."""
        if not records:
            return
        connection = await self.session.connection()  # already inside the transaction
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table, records=records, columns=columns)


def create_engine(settings: DatabaseSettings, **overrides: object) -> AsyncEngine:
    """An asyncpg engine sized from settings; ``overrides`` go straight to SQLAlchemy."""
    options: dict[str, object] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "echo": settings.echo,
        "pool_pre_ping": True,
    }
    options.update(overrides)
    return create_async_engine(settings.url, **options)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error."""
    async with factory() as session, session.begin():
        yield session


# SQLSTATEs that say the database, or the way to it, cannot do the work right now, whatever
# the values: connection exceptions (08), insufficient resources (53, e.g. too many
# connections or a full disk), operator intervention (57: admin shutdown, statement timeout),
# system errors (58), and conflicts between transactions that a retry resolves. Classes 42
# (undefined table or column, missing privilege), F0 (configuration) and XX (internal) are
# here too: no value bound to a parameter can cause them, they mean this deployment cannot
# apply anything yet, and the fix (a migration, a grant) makes the same work succeed.
_AVAILABILITY_CLASSES = frozenset({"08", "42", "53", "57", "58", "F0", "XX"})
_AVAILABILITY_CODES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "55006",  # object_in_use
        "25006",  # read_only_sql_transaction: connected to a standby after a failover
    }
)


def _error_chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps (SQLAlchemy's ``orig``, then ``__cause__``), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return chain


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL sent with ``error`` (SQLAlchemy-wrapped or not), if any."""
    for item in _error_chain(error):
        code = getattr(item, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


# Raised while a value is converted for the wire (asyncpg's client-side DataError is a
# ValueError; a datetime that overflows on conversion to UTC is an OverflowError).
_VALUE_ERRORS = (ValueError, TypeError, ArithmeticError)
_UNAVAILABLE = (
    OSError,  # connection refused or reset (ConnectionError is one)
    TimeoutError,
    sa_exc.TimeoutError,  # no pool connection in time
    sa_exc.InterfaceError,
    sa_exc.OperationalError,
    asyncpg.exceptions.InterfaceError,  # connection closed under the statement
    asyncpg.exceptions.PostgresConnectionError,
)


def is_availability_error(error: BaseException) -> bool:
    """True when ``error`` says the database is unavailable or busy (retry the same work
    later); False when the work itself is at fault: a value it cannot store, a constraint it
    violates, or any error raised while preparing the statement, which no retry can fix."""
    code = sqlstate_of(error)
    if code is not None:
        return code in _AVAILABILITY_CODES or code[:2] in _AVAILABILITY_CLASSES
    if is_value_error(error):
        return False
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return any(isinstance(item, _UNAVAILABLE) for item in _error_chain(error))


def is_value_error(error: BaseException) -> bool:
    """True when ``error`` was raised converting a value for the wire (before PostgreSQL saw
    the statement): the value is at fault."""
    return any(isinstance(item, _VALUE_ERRORS) for item in _error_chain(error))


def describe_error(error: BaseException, limit: int = 300) -> str:
    """One line naming the root error and its first line of message (no SQL, no parameters)."""
    root = _error_chain(error)[-1]
    lines = str(root).strip().splitlines()
    return (f"{type(root).__name__}: {lines[0]}" if lines else type(root).__name__)[:limit]
