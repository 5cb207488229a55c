"""Engine, session factory and the MetaData every model and migration shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum as PyEnum

from sqlalchemy import DateTime, Enum, MetaData, func
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
