"""Read schema.prisma and SQLAlchemy metadata into one comparable shape, and diff them.

Only the subset of Prisma this project uses is understood; anything else raises, so the file
cannot silently drift into syntax the comparison ignores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

SCHEMA_FILE = Path(__file__).with_name("schema.prisma")

ON_DELETE = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": None}
SCALARS = {"String", "Int", "BigInt", "Boolean", "DateTime", "Json", "Bytes", "Float", "Decimal"}


@dataclass(frozen=True, slots=True)
class Column:
    type: str
    nullable: bool
    default: str | None
    updated_at: bool = False


@dataclass(frozen=True, slots=True)
class Relation:
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    on_delete: str | None


@dataclass(slots=True)
class Table:
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    uniques: set[tuple[str, ...]] = field(default_factory=set)
    indexes: set[tuple[str, ...]] = field(default_factory=set)
    named_indexes: set[str] = field(default_factory=set)
    relations: set[Relation] = field(default_factory=set)


@dataclass(slots=True)
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)


class PrismaSyntaxError(ValueError):
    pass


# ------------------------------------------------------------------------- prisma side

_BLOCK = re.compile(r"^(model|enum|datasource|generator)\s+(\w+)\s*\{(.*?)^\}", re.M | re.S)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _attributes(rest: str) -> list[tuple[str, str]]:
    """Split '@id @default(uuid()) @db.VarChar(3)' into [(name, args)], balancing parens."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(rest):
        if rest[i].isspace():
            i += 1
            continue
        if rest[i] != "@":
            raise PrismaSyntaxError(f"unexpected {rest[i:]!r}")
        match = re.match(r"@@?[\w.]+", rest[i:])
        assert match is not None
        name, i = match.group(0), i + match.end()
        args = ""
        if i < len(rest) and rest[i] == "(":
            depth, start = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(rest[i], 0)
                i += 1
                if depth == 0:
                    break
            args = rest[start + 1 : i - 1]
        out.append((name, args))
    return out


def _list(args: str, key: str | None = None) -> tuple[str, ...]:
    source = args
    if key is not None:
        match = re.search(rf"{key}\s*:\s*\[([^\]]*)\]", args)
        if match is None:
            return ()
        source = match.group(1)
    else:
        match = re.match(r"\s*\[([^\]]*)\]", args)
        source = match.group(1) if match else ""
    return tuple(part.strip() for part in _top_level_split(source) if part.strip())


def _top_level_split(source: str) -> list[str]:
    """Split at commas outside parentheses and quotes: an index may list an expression such
    as ``COALESCE(deadline, 'infinity')``."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(source):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ",":
            parts.append(source[start:i])
            start = i + 1
    parts.append(source[start:])
    return parts


def _named(args: str, key: str) -> str | None:
    match = re.search(rf'{key}\s*:\s*"?([\w]+)"?', args)
    return match.group(1) if match else None


def _prisma_type(base: str, is_list: bool, attrs: dict[str, str], enums: dict[str, str]) -> str:
    if base in enums:
        kind = f"enum:{enums[base]}"
    elif base == "String":
        if "@db.Uuid" in attrs:
            kind = "uuid"
        elif "@db.VarChar" in attrs:
            kind = f"varchar({attrs['@db.VarChar']})"
        else:
            kind = "text"
    elif base == "DateTime":
        kind = "timestamptz" if "@db.Timestamptz" in attrs else "timestamp"
    else:
        kind = {"Int": "int", "BigInt": "bigint", "Boolean": "bool", "Json": "json"}.get(
            base, base.lower()
        )
    return kind + ("[]" if is_list else "")


def _block_attributes(table: Table, model: str, line: str) -> None:
    for attr, args in _attributes(line):
        cols = _list(args)
        if attr == "@@id":
            table.primary_key = cols
        elif attr == "@@unique":
            table.uniques.add(cols)
            if mapped := _named(args, "map"):
                table.named_indexes.add(mapped)
        elif attr == "@@index":
            table.indexes.add(cols)
            if mapped := _named(args, "map"):
                table.named_indexes.add(mapped)
        elif attr != "@@map":
            raise PrismaSyntaxError(f"{model}: unsupported {attr}")


def parse_prisma(text: str) -> Schema:
    """Parse the schema file into tables keyed by their mapped (SQL) name."""
    text = _strip_comments(text)
    blocks = [(m.group(1), m.group(2), m.group(3)) for m in _BLOCK.finditer(text)]
    enum_tables: dict[str, str] = {}
    schema = Schema()
    for kind, name, body in blocks:
        if kind == "enum":
            values = [ln.strip() for ln in body.splitlines() if ln.strip()]
            mapped = next((v for v in values if v.startswith("@@map")), f'@@map("{name}")')
            sql_name = re.findall(r'"(\w+)"', mapped)[0]
            enum_tables[name] = sql_name
            schema.enums[sql_name] = tuple(v for v in values if not v.startswith("@@"))
    model_tables = {
        name: (re.findall(r'@@map\("(\w+)"\)', body) or [name])[0]
        for kind, name, body in blocks
        if kind == "model"
    }
    for kind, name, body in blocks:
        if kind != "model":
            continue
        table = Table()
        schema.tables[model_tables[name]] = table
        for line in (ln.strip() for ln in body.splitlines()):
            if not line:
                continue
            if line.startswith("@@"):
                _block_attributes(table, name, line)
                continue
            match = re.match(r"(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$", line)
            if match is None:
                raise PrismaSyntaxError(f"{name}: cannot read {line!r}")
            fname, base, is_list, optional, rest = match.groups()
            attrs = dict(_attributes(rest))
            if base in model_tables:
                rel = attrs.get("@relation", "")
                fields = _list(rel, "fields")
                if fields:
                    on_delete = _named(rel, "onDelete")
                    table.relations.add(
                        Relation(
                            fields,
                            model_tables[base],
                            _list(rel, "references"),
                            ON_DELETE[on_delete] if on_delete else None,
                        )
                    )
                continue
            if base not in SCALARS and base not in enum_tables:
                raise PrismaSyntaxError(f"{name}.{fname}: unknown type {base}")
            default = attrs.get("@default")
            table.columns[fname] = Column(
                type=_prisma_type(base, bool(is_list), attrs, enum_tables),
                nullable=bool(optional),
                default=default.strip('"') if default is not None else None,
                updated_at="@updatedAt" in attrs,
            )
            if "@id" in attrs:
                table.primary_key = (fname,)
            if "@unique" in attrs:
                table.uniques.add((fname,))
    return schema


# ------------------------------------------------------------------------- sqlalchemy side


def _sql_type(column_type: sa.types.TypeEngine[object]) -> str:
    if isinstance(column_type, sa.ARRAY | postgresql.ARRAY):
        return _sql_type(column_type.item_type) + "[]"
    if isinstance(column_type, sa.Enum):
        return f"enum:{column_type.name}"
    if isinstance(column_type, sa.Uuid):
        return "uuid"
    if isinstance(column_type, sa.Text):
        return "text"
    if isinstance(column_type, sa.String):
        return f"varchar({column_type.length})" if column_type.length else "text"
    if isinstance(column_type, sa.BigInteger):
        return "bigint"
    if isinstance(column_type, sa.Integer):
        return "int"
    if isinstance(column_type, sa.Boolean):
        return "bool"
    if isinstance(column_type, sa.DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    if isinstance(column_type, postgresql.JSONB | sa.JSON):
        return "json"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes"
    raise TypeError(f"no Prisma mapping for {column_type!r}")


def _sql_default(column: sa.Column[object]) -> str | None:
    if isinstance(column.identity, sa.Identity):
        return "autoincrement()"
    if column.default is not None and getattr(column.default, "is_callable", False):
        fn = column.default.arg  # type: ignore[attr-defined]
        name = getattr(getattr(fn, "__wrapped__", fn), "__name__", "")
        return "uuid()" if "uuid" in name else f"{name}()"
    server = column.server_default
    if server is None:
        return None
    arg = server.arg  # type: ignore[attr-defined]
    if isinstance(arg, sa.sql.functions.now):
        return "now()"
    return str(getattr(arg, "text", arg))


def _index_part(expression: object, table_name: str) -> str:
    if isinstance(expression, sa.Column):
        return str(expression.name)
    if isinstance(expression, sa.ClauseElement):
        sql = str(expression.compile(dialect=postgresql.dialect()))
        return sql.replace(f"{table_name}.", "")
    return str(expression)


def schema_from_metadata(metadata: sa.MetaData) -> Schema:
    schema = Schema()
    for table_obj in metadata.sorted_tables:
        table = Table()
        schema.tables[table_obj.name] = table
        for column in table_obj.columns:
            if isinstance(column.type, sa.Enum) and column.type.name:
                schema.enums[column.type.name] = tuple(column.type.enums)
            table.columns[column.name] = Column(
                type=_sql_type(column.type),
                nullable=bool(column.nullable) and not column.primary_key,
                default=_sql_default(column),
                updated_at=column.onupdate is not None,
            )
            if column.unique:
                table.uniques.add((column.name,))
        table.primary_key = tuple(c.name for c in table_obj.primary_key.columns)
        for constraint in table_obj.constraints:
            if isinstance(constraint, sa.UniqueConstraint):
                table.uniques.add(tuple(c.name for c in constraint.columns))
            if isinstance(constraint, sa.ForeignKeyConstraint):
                table.relations.add(
                    Relation(
                        tuple(c.name for c in constraint.columns),
                        constraint.referred_table.name,
                        tuple(fk.column.name for fk in constraint.elements),
                        constraint.ondelete,
                    )
                )
        for index in table_obj.indexes:
            # A unique index is what Prisma's @@unique creates; an expression is written as in
            # the schema file ("lower(email)"), not as the columns it reads.
            parts = tuple(_index_part(e, table_obj.name) for e in index.expressions)
            (table.uniques if index.unique else table.indexes).add(parts)
            if isinstance(index.name, str) and not index.name.startswith("ix_%"):
                table.named_indexes.add(index.name)
    return schema


# ------------------------------------------------------------------------- diff


def diff(prisma: Schema, models: Schema) -> list[str]:
    """Human-readable differences; empty when the two describe the same database."""
    problems: list[str] = []
    for name in sorted(prisma.enums.keys() ^ models.enums.keys()):
        side = "schema.prisma" if name in prisma.enums else "models"
        problems.append(f"enum {name} only in {side}")
    for name in sorted(prisma.enums.keys() & models.enums.keys()):
        if prisma.enums[name] != models.enums[name]:
            problems.append(f"enum {name}: {prisma.enums[name]} != {models.enums[name]}")
    for name in sorted(prisma.tables.keys() ^ models.tables.keys()):
        side = "schema.prisma" if name in prisma.tables else "models"
        problems.append(f"model {name} only in {side}")
    for name in sorted(prisma.tables.keys() & models.tables.keys()):
        p, m = prisma.tables[name], models.tables[name]
        for col in sorted(p.columns.keys() ^ m.columns.keys()):
            side = "schema.prisma" if col in p.columns else "models"
            problems.append(f"{name}.{col} only in {side}")
        for col in sorted(p.columns.keys() & m.columns.keys()):
            if p.columns[col] != m.columns[col]:
                problems.append(f"{name}.{col}: prisma {p.columns[col]} != model {m.columns[col]}")
        if p.primary_key != m.primary_key:
            problems.append(f"{name}: primary key {p.primary_key} != {m.primary_key}")
        for label, pa, ma in (
            ("unique", p.uniques, m.uniques),
            ("index", p.indexes, m.indexes),
            ("relation", p.relations, m.relations),
        ):
            for item in sorted(map(str, pa - ma)):
                problems.append(f"{name}: {label} {item} only in schema.prisma")
            for item in sorted(map(str, ma - pa)):
                problems.append(f"{name}: {label} {item} only in models")
        for index_name in sorted(p.named_indexes - m.named_indexes):
            problems.append(f"{name}: index name {index_name} only in schema.prisma")
    return problems
