"""Which database errors wait for the database and which are a command's own fault."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from taskstream.db import describe_error, is_availability_error, is_value_error


def _wrapped(error: Exception) -> sa_exc.DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: a DBAPIError around the driver's error."""
    wrapped = sa_exc.DBAPIError("UPDATE tasks ...", {"title": "x"}, error)
    wrapped.__cause__ = error
    return wrapped


AVAILABILITY = [
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    asyncpg.exceptions.UndefinedTableError('relation "tasks" does not exist'),
    asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only txn"),
    asyncpg.exceptions.DiskFullError("could not extend file"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
    asyncpg.exceptions.InterfaceError("cannot call Connection.fetch(): connection is closed"),
]

COMMAND_FAULTS = [
    asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8"'),
    asyncpg.exceptions.DatetimeFieldOverflowError("date/time field value out of range"),
    asyncpg.exceptions.ForeignKeyViolationError("insert or update violates foreign key"),
    asyncpg.exceptions.StringDataRightTruncationError("value too long for type varchar(500)"),
    asyncpg.exceptions.ProgramLimitExceededError("index row size exceeds btree maximum"),
    asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
    asyncpg.exceptions._base.DataError("invalid input for query argument $3"),  # client side
    OverflowError("date value out of range"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
]


@pytest.mark.parametrize("error", AVAILABILITY, ids=lambda e: type(e).__name__)
def test_availability_errors_retry(error: Exception) -> None:
    assert is_availability_error(error)
    assert is_availability_error(_wrapped(error))


@pytest.mark.parametrize("error", COMMAND_FAULTS, ids=lambda e: type(e).__name__)
def test_value_and_constraint_errors_are_the_commands_fault(error: Exception) -> None:
    assert not is_availability_error(error)
    assert not is_availability_error(_wrapped(error))


def test_an_invalidated_connection_retries() -> None:
    error = sa_exc.DBAPIError("SELECT 1", None, Exception("lost"), connection_invalidated=True)
    assert is_availability_error(error)


def test_describe_names_the_root_without_sql_or_parameters() -> None:
    root = asyncpg.exceptions.CharacterNotInRepertoireError(
        'invalid byte sequence for encoding "UTF8": 0x00\nmore detail'
    )
    text = describe_error(_wrapped(root))
    assert text == 'CharacterNotInRepertoireError: invalid byte sequence for encoding "UTF8": 0x00'
    assert is_value_error(_wrapped(OverflowError("date value out of range")))
    assert not is_value_error(_wrapped(root))
