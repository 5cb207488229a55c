"""schema.prisma and the SQLAlchemy models must describe the same database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from prisma_like_schema.compare import (
    SCHEMA_FILE,
    PrismaSyntaxError,
    diff,
    parse_prisma,
    schema_from_metadata,
)
from taskstream.models import metadata

SCHEMA_TEXT = SCHEMA_FILE.read_text()


def test_schema_file_and_models_agree() -> None:
    problems = diff(parse_prisma(SCHEMA_TEXT), schema_from_metadata(metadata))
    assert problems == [], "\n".join(problems)


def test_every_model_table_is_described() -> None:
    assert set(parse_prisma(SCHEMA_TEXT).tables) == set(metadata.tables)


# Each mutation edits a copy of the schema file; the comparison must report it.
MUTATIONS = [
    (
        "field added",
        "  title               String       @db.VarChar(500)\n",
        "  title               String       @db.VarChar(500)\n  color String?\n",
        "tasks.color only in schema.prisma",
    ),
    (
        "type changed",
        "  title               String       @db.VarChar(500)",
        "  title               String       @db.VarChar(200)",
        "tasks.title",
    ),
    (
        "nullability changed",
        "  description         String?\n  status",
        "  description         String\n  status",
        "tasks.description",
    ),
    (
        "default changed",
        "TaskStatus   @default(todo)",
        "TaskStatus   @default(done)",
        "tasks.status",
    ),
    (
        "unique dropped",
        "  token_hash String    @unique @db.VarChar(128)",
        "  token_hash String    @db.VarChar(128)",
        "refresh_sessions: unique ('token_hash',) only in models",
    ),
    (
        "expression unique read as its column",
        "@@unique([lower(email)]",
        "@@unique([email]",
        "users: unique ('lower(email)',) only in models",
    ),
    (
        "expression unique dropped",
        '  @@unique([lower(email)], map: "uq_users_email_lower")\n',
        "",
        "users: unique ('lower(email)',) only in models",
    ),
    (
        "index dropped",
        "  @@index([assignee_id])\n",
        "",
        "tasks: index ('assignee_id',) only in models",
    ),
    (
        "relation changed",
        "references: [id], onDelete: SetNull)\n  reviewer",
        "references: [id], onDelete: Cascade)\n  reviewer",
        "relation",
    ),
    (
        "model added",
        "model WebhookAttempt {",
        'model Gone {\n  x Int @id\n\n  @@map("gone")\n}\n\nmodel WebhookAttempt {',
        "model gone only in schema.prisma",
    ),
    ("enum value added", "  urgent\n", "  urgent\n  critical\n", "enum task_priority"),
]


@pytest.mark.parametrize(
    ("label", "old", "new", "expected"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
def test_altered_schema_copy_is_reported(label: str, old: str, new: str, expected: str) -> None:
    assert SCHEMA_TEXT.count(old) == 1, f"mutation {label!r} no longer applies to the schema file"
    altered = SCHEMA_TEXT.replace(old, new)
    problems = diff(parse_prisma(altered), schema_from_metadata(metadata))
    assert any(expected in p for p in problems), problems


def test_column_added_to_models_only_is_reported() -> None:
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["tasks"].append_column(sa.Column("color", sa.String(20)))
    problems = diff(parse_prisma(SCHEMA_TEXT), schema_from_metadata(copy))
    assert "tasks.color only in models" in problems


def test_unknown_prisma_syntax_is_refused() -> None:
    with pytest.raises(PrismaSyntaxError):
        parse_prisma(SCHEMA_TEXT.replace("  @@index([assignee_id])", "  @@fulltext([title])"))
