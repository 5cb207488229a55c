"""Start locust on the scenarios in ``loadtest/`` (headless, web UI, or one master with
workers), bounded in time, and read its aggregated figures back from the CSV it wrote.
Locust is a development dependency and runs as a child process: nothing here imports it."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOCUST_CONF = Path("loadtest/locust.conf")
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
STOP_GRACE_S = 30  # locust's own stop (stop_timeout) plus writing its reports


def parse_duration(text: str) -> int:
    """Seconds of a locust-style duration: ``90``, ``90s``, ``2m``, ``1h30m``."""
    match = DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 60s, 2m, 1h30m)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True, slots=True)
class LocustPlan:
    host: str
    run_dir: Path
    users: int
    spawn_rate: float
    run_time_s: int
    shape: str | None = None
    tags: str | None = None
    workers: int = 0  # 0: one local process; N: one master and N workers
    web_ui: bool = False
    web_port: int = 8089


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(plan: LocustPlan) -> dict[str, str]:
    env = {**os.environ, "LOADTEST_RUN_DIR": str(plan.run_dir)}
    env["LOADTEST_SHAPE"] = plan.shape or ""
    env["LOADTEST_WORKERS"] = str(max(1, plan.workers))
    return env


def locust_argvs(plan: LocustPlan) -> list[list[str]]:
    """The command lines: the first is the process whose exit ends the run."""
    base = [sys.executable, "-m", "locust", "--config", str(LOCUST_CONF), "--host", plan.host]
    if plan.tags:
        base += ["--tags", *plan.tags.split(",")]
    main = [
        *base,
        "-u",
        str(plan.users),
        "-r",
        f"{plan.spawn_rate:g}",
        "--logfile",
        str(plan.run_dir / "locust.log"),
    ]
    if plan.web_ui:
        main += ["--web-host", "127.0.0.1", "--web-port", str(plan.web_port)]
    else:
        main += [
            "--headless",
            "-t",
            f"{plan.run_time_s}s",
            "--stop-timeout",
            "10",
            "--only-summary",
            "--csv",
            str(plan.run_dir / "locust"),
            "--html",
            str(plan.run_dir / "report.html"),
        ]
    if not plan.workers:
        return [main]
    port = _free_port()
    main += [
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
    ]
    if not plan.web_ui:
        main += ["--expect-workers", str(plan.workers), "--expect-workers-max-wait", "30"]
    workers = [
        [
            *base,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            "--logfile",
            str(plan.run_dir / f"locust-worker-{i}.log"),
        ]
        for i in range(plan.workers)
    ]
    return [main, *workers]


def run_locust(plan: LocustPlan) -> int:
    """Run locust to its end (headless: at most the run time plus a grace period; web UI:
    until interrupted) and return the exit code of the (master) process."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    env = _env(plan)
    children = [subprocess.Popen(argv, env=env) for argv in locust_argvs(plan)]  # noqa: S603
    main = children[0]
    deadline = None if plan.web_ui else time.monotonic() + plan.run_time_s + 60 + STOP_GRACE_S
    try:
        while main.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                main.send_signal(signal.SIGTERM)
                main.wait(STOP_GRACE_S)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        main.send_signal(signal.SIGINT)
        main.wait(STOP_GRACE_S)
    finally:
        for child in children[1:]:  # workers quit when their master does; never leave one
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return main.returncode if main.returncode is not None else 1


@dataclass(frozen=True, slots=True)
class LocustTotals:
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def read_totals(run_dir: Path) -> LocustTotals | None:
    """The "Aggregated" row of ``locust_stats.csv`` (None if locust wrote none)."""
    path = run_dir / "locust_stats.csv"
    if not path.exists():
        return None
    with path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            if row.get("Name") == "Aggregated":
                return LocustTotals(
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    requests_per_s=float(row["Requests/s"]),
                    p50_ms=float(row["50%"] if row["50%"] != "N/A" else 0),
                    p99_ms=float(row["99%"] if row["99%"] != "N/A" else 0),
                )
    return None
