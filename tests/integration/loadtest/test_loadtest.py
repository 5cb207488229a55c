"""The load-test harness end to end: `taskstream loadtest seed|run|verify` as a load tester
runs them, against a real API (default rate limits), consumer and relay in child processes."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from taskstream.loadtesting.run_files import COMMANDS_DIR, read_credentials, read_recorded
from taskstream.settings import Settings
from tests.integration.http_support import ApiServer
from tests.processes import ChildProcess, taskstream_argv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("database", "topics")]

RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def pipeline(
    settings: Settings, settings_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """API (default rate limits: the harness must not need raised ones), one consumer, the
    relay (the verification waits for the outbox to drain)."""
    logs = tmp_path_factory.mktemp("pipeline")
    api = ApiServer(settings).start()
    shells = [
        ChildProcess(taskstream_argv(name), settings_env, logs / f"{name}.log").start()
        for name in ("consume", "relay")
    ]
    try:
        yield api
    finally:
        api.stop()
        for shell in shells:
            shell.stop()


def loadtest(env: dict[str, str], *args: str, log: Path) -> tuple[int, str]:
    """`taskstream loadtest <args>` to its end (bounded); exit code and output."""
    child = ChildProcess(taskstream_argv("loadtest", *args), env, log).start()
    assert child.process is not None
    try:
        code = child.process.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.stop()
        pytest.fail(f"`taskstream loadtest {' '.join(args)}` did not end:\n{child.output()}")
    return code, child.output()


def verification(run_dir: Path) -> dict:
    return json.loads((run_dir / "verification.json").read_text())


async def test_seed_creates_what_it_says_and_is_idempotent(
    settings_env: dict[str, str], session_factory, tmp_path: Path
) -> None:
    run_id = f"seed{uuid.uuid4().hex[:6]}"
    args = ("seed", "--users", "4", "--projects", "2", "--members-per-project", "2")
    args += ("--run-id", run_id, "--results-dir", str(tmp_path))
    first_code, output = loadtest(settings_env, *args, log=tmp_path / "seed1.log")
    assert first_code == 0, output
    first = read_credentials(tmp_path / run_id)
    second_code, output = loadtest(settings_env, *args, log=tmp_path / "seed2.log")
    assert second_code == 0, output
    second = read_credentials(tmp_path / run_id)

    assert [u.id for u in second.users] == [u.id for u in first.users]
    assert [p.id for p in second.projects] == [p.id for p in first.projects]
    assert all(u.access_token and u.refresh_token for u in second.users)
    assert all(len(p.member_ids) == 2 for p in second.projects)
    async with session_factory() as session:
        users = (
            await session.execute(
                text("SELECT count(*) FROM users WHERE email LIKE :p"),
                {"p": f"loadtest-{run_id}-%"},
            )
        ).scalar_one()
        projects = (
            await session.execute(
                text(
                    "SELECT count(*), sum((SELECT count(*) FROM project_members m"
                    " WHERE m.project_id = p.id)) FROM projects p WHERE p.name LIKE :p"
                ),
                {"p": f"loadtest {run_id} team %"},
            )
        ).one()
        personal = (
            await session.execute(
                text("SELECT count(*) FROM projects WHERE is_personal AND owner_id = ANY(:ids)"),
                {"ids": [u.id for u in second.users]},
            )
        ).scalar_one()
    assert users == 4
    assert tuple(projects) == (2, 2 * 3)  # owner + two members each, once
    assert personal == 4


@pytest.fixture(scope="module")
def headless_run(
    pipeline: ApiServer, settings_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    results = tmp_path_factory.mktemp("results")
    run_id = f"run{uuid.uuid4().hex[:6]}"
    code, output = loadtest(
        settings_env,
        "run",
        *("--host", pipeline.url, "--users", "2", "--spawn-rate", "2", "--time", "6s"),
        *("--run-id", run_id, "--results-dir", str(results), "--verify-timeout", "60"),
        log=results / "run.log",
    )
    assert code == 0, output
    assert "0 missing, 0 duplicated" in output, output
    return results / run_id


def test_headless_run_records_every_accepted_command_and_verifies_them(
    headless_run: Path,
) -> None:
    recorded = list(read_recorded(headless_run))
    result = verification(headless_run)
    assert recorded, "the run recorded no accepted command"
    assert result["recorded"] == len({r.command_id for r in recorded})
    assert result["applied"] + result["rejected"] == result["recorded"]
    assert result["missing"] == result["duplicated"] == 0
    assert result["drain"]["drained"]
    assert result["latency_ms"]["p99"] >= result["latency_ms"]["p50"] >= 0
    assert (headless_run / "report.html").exists()
    assert (headless_run / "locust_stats.csv").exists()


async def test_verify_reports_a_deleted_applied_row_and_an_unknown_id_as_missing(
    headless_run: Path, settings_env: dict[str, str], session_factory, tmp_path: Path
) -> None:
    applied = next(iter(read_recorded(headless_run))).command_id
    async with session_factory() as session:
        await session.execute(
            text("DELETE FROM command_statuses WHERE command_id = :id"), {"id": applied}
        )
        await session.commit()
    unknown = uuid.uuid4()
    line = {"commandId": str(unknown), "taskId": None, "acceptedAt": 0.0, "kind": "made-up"}
    (headless_run / COMMANDS_DIR / "by-hand.jsonl").write_text(json.dumps(line) + "\n")

    code, output = loadtest(
        settings_env, "verify", str(headless_run), "--timeout", "30", log=tmp_path / "verify.log"
    )
    assert code == 1, output
    result = verification(headless_run)
    assert result["missing"] == 2
    assert set(result["missing_ids"]) == {str(applied), str(unknown)}
    assert "2 missing, 0 duplicated" in output


def test_distributed_run_with_a_master_and_two_workers_records_and_verifies(
    pipeline: ApiServer, settings_env: dict[str, str], tmp_path: Path
) -> None:
    run_id = f"dist{uuid.uuid4().hex[:6]}"
    code, output = loadtest(
        {**settings_env, "PYTHONUNBUFFERED": "1"},
        "run",
        *("--host", pipeline.url, "--users", "4", "--spawn-rate", "4", "--time", "8s"),
        *("--workers", "2", "--run-id", run_id, "--results-dir", str(tmp_path)),
        log=tmp_path / "run.log",
    )
    assert code == 0, output
    run_dir = tmp_path / run_id
    writers = [p for p in (run_dir / COMMANDS_DIR).glob("*.jsonl") if p.stat().st_size]
    assert len(writers) >= 2, "each worker process writes its own file"
    result = verification(run_dir)
    assert result["recorded"] > 0
    assert result["missing"] == result["duplicated"] == 0
    assert os.path.exists(run_dir / "report.html")
