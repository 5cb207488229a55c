"""Field types shared by every request struct and query parameter.

What the API accepts is what PostgreSQL can store and Python can read back, so nothing valid
JSON can express turns into a 500, or into a command the consumer cannot apply:

- text never contains U+0000: PostgreSQL's ``text`` cannot hold it (asyncpg raises
  ``CharacterNotInRepertoireError``). Lone surrogates never get this far: msgspec refuses a
  ``\\ud800`` escape that is not half of a pair as malformed JSON (400), and invalid UTF-8 in
  the raw body likewise;
- every text has an upper length (columns are ``varchar(n)`` or ``text``; a 1 MB body could
  otherwise put 1 MB into one column);
- a datetime carries an offset and stays inside 0001-01-01 .. 9999-12-31 *after* conversion
  to UTC. ``timestamptz`` spans 4713 BC .. 294276 AD, Python's ``datetime`` only years
  1..9999, and asyncpg converts to UTC before sending: ``9999-12-31T23:00-05:00`` parses but
  overflows there (``date value out of range``);
- JSON bodies nest at most ``MAX_JSON_DEPTH`` levels (see ``taskstream.app.ApiRequest``).

The string rules are msgspec ``Meta`` patterns, so they are in the OpenAPI schema too; the
datetime range cannot be expressed there and is checked by ``RequestStruct.__post_init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

import msgspec
import msgspec.inspect

# Deeper than any request body we define (3 levels) with a wide margin; far below the depth at
# which msgspec's untyped decoder raises RecursionError (the interpreter's recursion limit).
MAX_JSON_DEPTH: Final = 32

# ECMA-262 and Python ``re`` read both the same way. ``\s`` is exactly ``str.isspace``, the
# rule the consumer applies to titles (``title.strip()``).
NO_NUL: Final = r"^[^\x00]*$"
NOT_BLANK: Final = r"^\s*[^\s\x00][^\x00]*$"

# Readable messages for the patterns above (msgspec reports the regex itself).
PATTERN_MESSAGES: Final = {
    NO_NUL: "must not contain the NUL character (U+0000)",
    NOT_BLANK: "must contain a visible character and no NUL character (U+0000)",
}

MIN_UTC: Final = datetime.min.replace(tzinfo=UTC)
MAX_UTC: Final = datetime.max.replace(tzinfo=UTC)
DATETIME_RANGE: Final = "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
DATETIME_DESCRIPTION: Final = f"RFC 3339 date-time with an offset, {DATETIME_RANGE} in UTC"


def _text(min_length: int, max_length: int, pattern: str = NO_NUL, **extra: Any) -> msgspec.Meta:
    return msgspec.Meta(min_length=min_length, max_length=max_length, pattern=pattern, **extra)


# --- text ------------------------------------------------------------------------------------

Email = Annotated[str, _text(3, 320, examples=["ada@example.com"])]
Password = Annotated[str, _text(1, 256)]
Token = Annotated[str, _text(1, 200)]
Name = Annotated[str, _text(1, 200, NOT_BLANK)]
Title = Annotated[str, _text(1, 500, NOT_BLANK)]
LongText = Annotated[str, _text(0, 10_000)]  # descriptions, comments
Url = Annotated[str, _text(8, 2000)]
Secret = Annotated[str, _text(16, 200)]
Identifier = Annotated[str, _text(1, 64)]  # event type names and other short keys
Cursor = Annotated[str, _text(1, 200)]
# Litestar drops a type's own Meta from the OpenAPI of a query parameter (it still validates),
# so query parameters spell their bounds with these.
CURSOR_QUERY: Final = {"max_length": 200, "pattern": NO_NUL}

# --- datetimes -------------------------------------------------------------------------------

AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description=DATETIME_DESCRIPTION,
    ),
]


def storable_datetime_error(value: datetime) -> str | None:
    """Why ``value`` cannot be stored in a ``timestamptz`` and read back (None: it can)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must carry a UTC offset (e.g. Z or +02:00)"
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"must lie {DATETIME_RANGE} once converted to UTC"
    return None


def parse_storable_datetime(text: str) -> datetime:
    """An ISO 8601 datetime that ``storable_datetime_error`` accepts; ValueError otherwise."""
    value = datetime.fromisoformat(text)
    if (error := storable_datetime_error(value)) is not None:
        raise ValueError(error)
    return value


class ApiStruct(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=False):
    """Base of HTTP contracts: camelCase JSON."""


class RequestStruct(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=False):
    """Base of every request body: camelCase JSON, and datetimes checked for storability.

    msgspec calls ``__post_init__`` after decoding; the ValueError becomes a 422 whose path is
    this struct joined with the field named in the message (``problems.py``)."""

    def __post_init__(self) -> None:
        cls = type(self)
        fields = _DATETIME_FIELDS.get(cls)
        if fields is None:
            fields = _DATETIME_FIELDS[cls] = _datetime_fields(cls)
        for name, json_name in fields:
            value = getattr(self, name)
            if isinstance(value, datetime) and (error := storable_datetime_error(value)):
                raise ValueError(f"field `{json_name}` {error}")


# (attribute, JSON name) of the datetime fields of each request struct, found once per class:
# on POST /tasks a loop over every field cost more than decoding the body.
_DATETIME_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _holds_datetime(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _holds_datetime(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_holds_datetime(t) for t in info.types)
    return isinstance(info, msgspec.inspect.DateTimeType)


def _datetime_fields(cls: type) -> tuple[tuple[str, str], ...]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple((f.name, f.encode_name) for f in info.fields if _holds_datetime(f.type))


# --- OpenAPI examples ------------------------------------------------------------------------

_StructT = TypeVar("_StructT", bound=msgspec.Struct)
_EXAMPLES: dict[type, dict[str, Any]] = {}


def example(value: dict[str, Any]) -> Callable[[type[_StructT]], type[_StructT]]:
    """Declare ``value`` (wire form: camelCase, ids and datetimes as strings) the OpenAPI
    example of the decorated struct, so every operation that takes or returns it shows it
    (web/docs.py puts it into the struct's component schema). tests/unit/test_openapi_examples.py
    checks that each example decodes into its struct."""

    def declare(cls: type[_StructT]) -> type[_StructT]:
        _EXAMPLES[cls] = value
        return cls

    return declare


def example_of(cls: type) -> dict[str, Any] | None:
    """The example declared on a struct with ``@example`` (None: none declared)."""
    return _EXAMPLES.get(cls)


def pattern_message(message: str) -> str:
    """msgspec's "Expected `str` matching regex '...'" in words a client understands."""
    for pattern, readable in PATTERN_MESSAGES.items():
        if f"regex {pattern!r}" in message:
            return readable
    return message


__all__ = [
    "CURSOR_QUERY",
    "MAX_JSON_DEPTH",
    "ApiStruct",
    "AwareDatetime",
    "Cursor",
    "Email",
    "Identifier",
    "LongText",
    "Name",
    "Password",
    "RequestStruct",
    "Secret",
    "Title",
    "Token",
    "Url",
    "example",
    "example_of",
    "parse_storable_datetime",
    "pattern_message",
    "storable_datetime_error",
]
