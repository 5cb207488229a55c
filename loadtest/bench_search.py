"""Task search benchmark: `python -m loadtest.bench_search` (a few minutes).

Chooses between the two candidate indexes for ``GET /tasks?q=`` on generated data:

1. A scratch database (migrated to head, its full-text index dropped) gets ``--tasks`` tasks
   (1M by default) in 500 projects of Zipf-like sizes, by COPY. Titles (3-8 words) and
   descriptions (5-40 words, a quarter empty) are drawn from one 50k-word vocabulary with a
   Zipf distribution (``loadtest/task_text.py``).
2. For each candidate, built in turn on the same rows: build time, index size, then the query
   the API runs (``ORDER BY created_at, id LIMIT 51``, every column) for six term shapes, over
   all tasks and within one project, ``--reps`` times each with rotating terms: p50 and p99.
   - ``tsvector``: GIN over ``to_tsvector('simple', title || ' ' || description)``, matched
     with ``websearch_to_tsquery`` (prefix: ``to_tsquery('w:*')``);
   - ``trgm``: GIN ``gin_trgm_ops`` over the same text, matched with ``ILIKE '%term%'``.
3. In-run references on the same rows: the page without ``q`` (the ceiling: what any search
   costs on top of it) and the ILIKE query without a text index (the floor an index must beat).
4. Write overhead: ``loadtest.bench_consumer --realistic-text --skip-e2e`` once per index set
   (none of migration 0008's indexes; its sort indexes only; all of them; trigram instead of
   tsvector); apply rate next to its raw-asyncpg ceiling.

Prints markdown tables and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from loadtest.task_text import TaskText
from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.settings import Settings
from taskstream.tasks.search import SEARCH_DOCUMENT

ROOT = Path(__file__).resolve().parents[1]
RUN = uuid.uuid4().hex[:8]
PROJECTS = 500
USERS = 2000
PAGE = 51
# A cell whose warm-up query takes longer than this is sampled SLOW_REPS times only.
SLOW_S = 0.5
SLOW_REPS = 5
TEXT = "(title || ' ' || coalesce(description, ''))"


@dataclass(frozen=True)
class Candidate:
    name: str
    create: str
    # shape -> (SQL condition with $1.., the parameters for one term)
    match: Callable[[str, str], tuple[str, list[str]]]
    drop: str = "DROP INDEX bench_search"


def tsvector_match(shape: str, term: str, document: str = SEARCH_DOCUMENT) -> tuple[str, list[str]]:
    if shape == "prefix":
        return f"{document} @@ to_tsquery('simple', $1)", [f"{term}:*"]
    query = f'"{term}"' if shape == "phrase" else term
    return f"{document} @@ websearch_to_tsquery('simple', $1)", [query]


def stored_match(shape: str, term: str) -> tuple[str, list[str]]:
    return tsvector_match(shape, term, "t.bench_document")


def like_match(shape: str, term: str) -> tuple[str, list[str]]:
    if shape == "two words":
        first, second = term.split()
        return f"{TEXT} ILIKE $1 AND {TEXT} ILIKE $2", [f"%{first}%", f"%{second}%"]
    return f"{TEXT} ILIKE $1", [f"%{term}%"]


CANDIDATES = (
    Candidate(
        "tsvector (GIN, 'simple', expression)",
        f"CREATE INDEX bench_search ON tasks USING gin (({SEARCH_DOCUMENT}))",
        tsvector_match,
    ),
    Candidate(
        "tsvector (GIN over a stored generated column)",
        f"ALTER TABLE tasks ADD COLUMN bench_document tsvector GENERATED ALWAYS AS "
        f"({SEARCH_DOCUMENT}) STORED; "
        "CREATE INDEX bench_search ON tasks USING gin (bench_document)",
        stored_match,
        "DROP INDEX bench_search; ALTER TABLE tasks DROP COLUMN bench_document",
    ),
    Candidate(
        "pg_trgm (GIN gin_trgm_ops, ILIKE)",
        f"CREATE INDEX bench_search ON tasks USING gin ({TEXT} gin_trgm_ops)",
        like_match,
    ),
)


def term_shapes(text: TaskText) -> dict[str, list[str]]:
    """Ten terms per shape, picked by how common their words are."""
    words = text.words
    return {
        "common word": words[1:11],
        "rare word": words[20_000:40_000:2_000],
        "two words": [f"{words[i]} {words[i + 20]}" for i in range(20, 30)],
        "prefix": [w[:4] for w in words[150:400] if len(w) >= 6][:10],
        "phrase": [
            f"{a} {b}" for a, b in itertools.islice(itertools.permutations(words[:6], 2), 10)
        ],
        "no match": [f"zzyzx{i}" for i in range(10)],
    }


async def load_tasks(conn: asyncpg.Connection, n: int, text: TaskText) -> list[uuid.UUID]:
    """``n`` tasks by COPY; returns the projects, largest first."""
    users = [uuid.uuid4() for _ in range(USERS)]
    projects = [uuid.uuid4() for _ in range(PROJECTS)]
    await conn.copy_records_to_table(
        "users",
        records=[(u, f"{u}@bench.example", "bench", "x") for u in users],
        columns=("id", "email", "name", "password_hash"),
    )
    await conn.copy_records_to_table(
        "projects",
        records=[(p, "bench", users[i % USERS]) for i, p in enumerate(projects)],
        columns=("id", "name", "owner_id"),
    )
    rng = random.Random(3)
    project_weights = list(itertools.accumulate(1 / r for r in range(1, PROJECTS + 1)))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chunk = 50_000
    for base in range(0, n, chunk):
        size = min(chunk, n - base)
        owners = rng.choices(projects, cum_weights=project_weights, k=size)
        records = []
        for i in range(size):
            created = start + timedelta(seconds=20 * (base + i))
            deadline = created + timedelta(days=rng.randint(1, 60)) if rng.random() < 0.4 else None
            records.append(
                (
                    uuid.uuid4(),
                    owners[i],
                    text.title(),
                    text.description(),
                    users[rng.randrange(USERS)],
                    created,
                    created,
                    deadline,
                )
            )
        await conn.copy_records_to_table(
            "tasks",
            records=records,
            columns=(
                "id",
                "project_id",
                "title",
                "description",
                "created_by",
                "created_at",
                "updated_at",
                "deadline",
            ),
        )
    return projects


async def timed(conn: asyncpg.Connection, sql: str, params: list[object]) -> float:
    started = time.perf_counter()
    await conn.fetch(sql, *params)
    return time.perf_counter() - started


def page_sql(condition: str, project: bool, offset: int) -> str:
    """The API's list query; ``offset`` renumbers the condition's $n after the project's $1."""
    if project:
        condition = re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + offset}", condition)
    where = "t.deleted_at IS NULL" + (" AND t.project_id = $1" if project else "")
    return (
        f"SELECT t.* FROM tasks t WHERE {where} AND {condition} "
        f"ORDER BY t.created_at, t.id LIMIT {PAGE}"
    )


async def measure(
    conn: asyncpg.Connection,
    match: Callable[[str, str], tuple[str, list[str]]],
    shapes: dict[str, list[str]],
    project: uuid.UUID,
    reps: int,
) -> dict[tuple[str, bool], list[float]]:
    """Latencies (s) per (shape, within one project), one warm-up query per cell first;
    a slow cell (warm-up over SLOW_S) gets SLOW_REPS samples."""
    out: dict[tuple[str, bool], list[float]] = {}
    for shape, terms in shapes.items():
        for in_project in (False, True):
            samples: list[float] = []
            rep, cell_reps = 0, reps
            while rep <= cell_reps:
                condition, params = match(shape, terms[rep % len(terms)])
                sql = page_sql(condition, in_project, 1)
                args: list[object] = [project, *params] if in_project else list(params)
                elapsed = await timed(conn, sql, args)
                if rep:
                    samples.append(elapsed)
                elif elapsed > SLOW_S:
                    cell_reps = min(reps, SLOW_REPS)  # keeps the run to a few minutes
                rep += 1
            out[shape, in_project] = sorted(samples)
    return out


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def print_latencies(title: str, results: dict[tuple[str, bool], list[float]]) -> None:
    print(f"\n**{title}** (ms, p50 / p99; n = samples per cell)\n")
    print("| term shape | all tasks | one project |")
    print("| --- | ---: | ---: |")
    for shape in dict.fromkeys(shape for shape, _ in results):
        cells = []
        for in_project in (False, True):
            samples = results[shape, in_project]
            n = len(samples)
            cells.append(f"{ms(pct(samples, 0.5))} / {ms(pct(samples, 0.99))} (n={n})")
        print(f"| {shape} | {' | '.join(cells)} |")


async def search_figures(args: argparse.Namespace) -> None:
    settings = isolated_settings(Settings(), RUN, db_prefix="taskstream_bench")
    await create_database(settings, ROOT)
    conn = await asyncpg.connect(asyncpg_dsn(settings.db.url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute("SET statement_timeout = '60s'")
        await conn.execute("DROP INDEX ix_tasks_search")
        text = TaskText()
        started = time.perf_counter()
        projects = await load_tasks(conn, args.tasks, text)
        load_s = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE tasks")
        project = projects[9]
        project_size = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE project_id = $1", project
        )
        table_size = await conn.fetchval("SELECT pg_size_pretty(pg_table_size('tasks'))")
        shapes = term_shapes(text)
        print(f"\n{args.tasks:,} tasks loaded by COPY in {load_s:.0f} s; table {table_size};")
        print(f"the project filter names the 10th largest project ({project_size:,} tasks).")
        counts = []
        for shape, terms in shapes.items() if args.references else ():
            condition, params = tsvector_match(shape, terms[0])
            sql = f"SELECT count(*) FROM tasks t WHERE {condition}"
            counts.append(f"{shape} {terms[0]!r}: {await conn.fetchval(sql, *params):,}")
        print("Matches of the first term of each shape (tsvector):", "; ".join(counts))

        def no_q(_shape: str, _term: str) -> tuple[str, list[str]]:
            return "true", []

        if args.references:
            ceiling = await measure(conn, no_q, {"page without q": ["-"]}, project, args.reps)
            floor = await measure(conn, like_match, shapes, project, args.reps)
            print_latencies("Ceiling: the same page without q", ceiling)
            print_latencies("No text index: ILIKE by sequential scan / btree walk", floor)
        for index, candidate in enumerate(CANDIDATES):
            if args.candidates and str(index) not in args.candidates.split(","):
                continue
            started = time.perf_counter()
            await conn.execute("SET statement_timeout = 0")  # a build may take minutes
            await conn.execute(candidate.create)
            await conn.execute("SET statement_timeout = '60s'")
            build_s = time.perf_counter() - started
            await conn.execute("VACUUM ANALYZE tasks")
            size = await conn.fetchval("SELECT pg_size_pretty(pg_relation_size('bench_search'))")
            table = await conn.fetchval("SELECT pg_size_pretty(pg_table_size('tasks'))")
            results = await measure(conn, candidate.match, shapes, project, args.reps)
            title = f"{candidate.name}: index {size} (table {table}), built in {build_s:.0f} s"
            print_latencies(title, results)
            await conn.execute(candidate.drop)
            await conn.execute("VACUUM FULL tasks")
    finally:
        await conn.close()
        await drop_database(settings)


def consumer_overhead(commands: int) -> None:
    print("\n**Write overhead: consumer apply rate by index set (realistic text)**\n")
    print("| index set | apply rate | raw asyncpg ceiling | ratio |")
    print("| --- | ---: | ---: | ---: |")
    labels = {
        "none": "none of 0008 (before)",
        "sorts": "0008 sort/filter indexes only",
        "migrated": "0008 as migrated (sorts + tsvector GIN)",
        "trgm": "0008 sorts + pg_trgm GIN instead",
    }
    for variant, label in labels.items():
        argv = [
            sys.executable, "-m", "loadtest.bench_consumer", "--commands", str(commands),
            "--realistic-text", "--skip-e2e", "--search-index", variant,
        ]  # fmt: skip
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        rate = re.search(r"\*\*apply rate[^|]*\| \*\*([\d,]+)", result.stdout)
        ceiling = re.search(r"raw asyncpg ceiling, same rows \| ([\d,]+)", result.stdout)
        ratio = re.search(r"apply rate / ceiling \| (\d+%)", result.stdout)
        if not (rate and ceiling and ratio):
            print(f"| {label} | failed: {result.stderr[-300:]!r} | | |")
            continue
        print(f"| {label} | {rate.group(1)}/s | {ceiling.group(1)}/s | {ratio.group(1)} |")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--consumer-commands", type=int, default=50_000)
    parser.add_argument("--skip-consumer", action="store_true")
    parser.add_argument(
        "--no-references",
        dest="references",
        action="store_false",
        help="skip match counts, the page without q and the query without an index",
    )
    parser.add_argument(
        "--candidates", default="", help="comma-separated indexes into CANDIDATES (default all)"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    await search_figures(args)
    print(f"\nload average after the queries: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.skip_consumer:
        consumer_overhead(args.consumer_commands)
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
