"""`taskstream run` (what `make run` executes) runs the whole pipeline and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid

import httpx
import psutil
import pytest

from taskstream.settings import Settings
from tests.conftest import HEALTH_HEADERS
from tests.processes import ChildProcess, taskstream_argv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("database", "topics")]

PASSWORD = "correct horse 42 battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "taskstream run exited early"
        try:
            response = httpx.get(f"{url}/health", headers=HEALTH_HEADERS, timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("the API never became healthy")


def test_run_serves_applies_and_stops_on_sigterm(settings: Settings, settings_env) -> None:
    port = free_port()
    env = {
        **settings_env,
        "TASKSTREAM_API__PORT": str(port),
        # every test run registers from 127.0.0.1: keep the per-IP registration limit out of it
        "TASKSTREAM_LIMITS__REGISTRATION": "100000/hour",
    }
    run = ChildProcess(taskstream_argv("run"), env).start()
    process = run.process
    assert process is not None
    url = f"http://127.0.0.1:{port}"
    children: list[psutil.Process] = []
    try:
        health = wait_healthy(url, process)
        assert {"postgres", "redis", "rabbitmq", "kafka"} <= set(health["services"])
        assert all(health["services"][s]["status"] == "up" for s in ("postgres", "kafka"))
        children = psutil.Process(process.pid).children()
        commands = sorted(" ".join(c.cmdline()[2:4]) for c in children)
        assert commands == [
            "taskstream api",
            "taskstream consume",
            "taskstream process-attachments",
            "taskstream relay",
            "taskstream work",
        ]

        email = f"run-{uuid.uuid4().hex[:8]}@example.com"
        register = httpx.post(
            f"{url}/auth/register", json={"name": "Run", "email": email, "password": PASSWORD}
        )
        assert register.status_code == 201, register.text
        token = httpx.post(f"{url}/auth/login", json={"email": email, "password": PASSWORD}).json()[
            "accessToken"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        accepted = httpx.post(
            f"{url}/tasks", json={"title": "through the whole system"}, headers=auth
        )
        assert accepted.status_code == 202, accepted.text
        command_id, task_id = accepted.json()["commandId"], accepted.json()["taskId"]

        status = httpx.get(
            f"{url}/commands/{command_id}", params={"wait": 20}, headers=auth, timeout=30
        )
        assert status.json()["status"] == "applied", status.text
        task = httpx.get(f"{url}/tasks/{task_id}", headers=auth)
        assert task.status_code == 200
        assert task.json()["title"] == "through the whole system"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert code == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"children left running: {alive}"
