"""`taskstream loadtest run` (what `make loadtest` executes) and `taskstream loadtest ui`:
seed, drive locust against the running API, verify, summarise."""

from __future__ import annotations

import math
from pathlib import Path

import click
import httpx

from taskstream.cli.loadtest import RESULTS_DIR, new_run_id, seed_run_dir, verify_run_dir
from taskstream.loadtesting.locust_process import (
    LOCUST_CONF,
    LocustPlan,
    parse_duration,
    read_totals,
    run_locust,
)
from taskstream.loadtesting.seed import SeedPlan
from taskstream.settings import get_settings

# the shapes of loadtest/scenarios/shapes.py (a unit test keeps the two lists equal)
SHAPE_NAMES = ("none", "ramp", "step", "spike")


def _check_api(host: str) -> None:
    if not LOCUST_CONF.exists():
        raise click.ClickException(f"{LOCUST_CONF} not found: run from the repository root")
    try:
        httpx.get(f"{host}/health", timeout=5)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the API at {host} does not answer ({exc!r}): start it first (`make run`)"
        ) from exc


def _seed(run_id: str | None, results: Path, users: int, seed_users: int | None) -> Path:
    seeded = seed_users or users
    plan = SeedPlan(run_id or new_run_id(), seeded, max(1, math.ceil(seeded / 4)), 3)
    return seed_run_dir(get_settings(), results, plan)


@click.command("run")
@click.option("--host", default="http://127.0.0.1:8000", show_default=True)
@click.option("--users", type=click.IntRange(1), default=20, show_default=True)
@click.option("--spawn-rate", type=float, default=5.0, show_default=True)
@click.option("--time", "run_time", default="60s", show_default=True, help="e.g. 30s, 2m")
@click.option("--shape", type=click.Choice(SHAPE_NAMES), default="none", show_default=True)
@click.option("--tags", default=None, help="only tasks with these locust tags (a,b)")
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="distributed: one master and this many locust worker processes",
)
@click.option(
    "--seed-users",
    type=click.IntRange(1),
    default=None,
    help="seeded users (default: --users; one per simulated client)",
)
@click.option("--run-id", default=None, help="default: a new one (date-time)")
@click.option("--verify-timeout", type=float, default=120.0, show_default=True)
@click.option(
    "--max-failure-ratio",
    type=float,
    default=0.01,
    show_default=True,
    help="exit 1 when locust's failed requests exceed this share",
)
@click.option(
    "--results-dir", type=click.Path(path_type=Path), default=RESULTS_DIR, show_default=True
)
def run(
    *,
    host: str,
    users: int,
    spawn_rate: float,
    run_time: str,
    shape: str,
    tags: str | None,
    workers: int,
    seed_users: int | None,
    run_id: str | None,
    verify_timeout: float,
    max_failure_ratio: float,
    results_dir: Path,
) -> None:
    """Seed, run locust headless against the running API for a bounded time, write its CSV
    and HTML reports and the verification into RESULTS_DIR/<run-id>/, print the summary."""
    _check_api(host)
    run_dir = _seed(run_id, results_dir, users, seed_users)
    plan = LocustPlan(
        host=host,
        run_dir=run_dir,
        users=users,
        spawn_rate=spawn_rate,
        run_time_s=parse_duration(run_time),
        shape=None if shape == "none" else shape,
        tags=tags,
        workers=workers,
    )
    click.echo(
        f"locust: {users} users, {spawn_rate:g}/s, {plan.run_time_s} s, shape {shape}"
        f"{f', {workers} workers' if workers else ''} -> {run_dir}"
    )
    run_locust(plan)
    totals = read_totals(run_dir)
    ok, text = verify_run_dir(get_settings(), run_dir, verify_timeout)
    click.echo(f"\n== {run_dir}")
    if totals is None:
        click.echo("locust wrote no statistics (see locust.log)")
    else:
        click.echo(
            f"locust: {totals.requests} requests, {totals.failures} failed "
            f"({totals.failure_ratio:.2%}), {totals.requests_per_s:.0f} req/s, "
            f"p50 {totals.p50_ms:.0f} ms, p99 {totals.p99_ms:.0f} ms"
        )
    click.echo(text)
    click.echo(f"reports: {run_dir / 'report.html'}, {run_dir}/locust_*.csv")
    failed_requests = totals is None or totals.failure_ratio > max_failure_ratio
    raise SystemExit(0 if ok and not failed_requests else 1)


@click.command("ui")
@click.option("--host", default="http://127.0.0.1:8000", show_default=True)
@click.option(
    "--users",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="seeded users and the UI's default user count",
)
@click.option("--spawn-rate", type=float, default=5.0, show_default=True)
@click.option("--web-port", type=int, default=8089, show_default=True)
@click.option("--run-id", default=None)
@click.option(
    "--results-dir", type=click.Path(path_type=Path), default=RESULTS_DIR, show_default=True
)
def ui(
    *,
    host: str,
    users: int,
    spawn_rate: float,
    web_port: int,
    run_id: str | None,
    results_dir: Path,
) -> None:
    """Seed, then start the locust web UI (http://127.0.0.1:8089) on the same scenarios;
    verify the run's commands when it is stopped (Ctrl-C)."""
    _check_api(host)
    run_dir = _seed(run_id, results_dir, users, None)
    click.echo(f"locust web UI on http://127.0.0.1:{web_port} (Ctrl-C to stop and verify)")
    run_locust(
        LocustPlan(
            host=host,
            run_dir=run_dir,
            users=users,
            spawn_rate=spawn_rate,
            run_time_s=0,
            web_ui=True,
            web_port=web_port,
        )
    )
    ok, text = verify_run_dir(get_settings(), run_dir, 120.0)
    click.echo(text)
    raise SystemExit(0 if ok else 1)


def register_run(group: click.Group) -> None:
    group.add_command(run)
    group.add_command(ui)
