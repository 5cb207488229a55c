"""A private RabbitMQ node for outage tests, so the shared broker on 5672 is never stopped.

Own node name, AMQP and distribution ports, data and log directories under /tmp; the shared
epmd and Erlang cookie are reused. ``stop_app``/``start_app`` take the AMQP listener (and every
connection) down and bring it back with the durable queues intact.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRabbit:
    def __init__(self) -> None:
        self.node = f"ts{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ts-rabbit-", dir="/tmp"))
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _ctl(self, *args: str, timeout: float = 90) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> PrivateRabbit:
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.dir.chmod(0o755)
        if os.geteuid() == 0:  # the server script drops to the rabbitmq user
            user = pwd.getpwnam("rabbitmq")
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=60)
        self._ctl("wait", str(self.dir / "pid"), "--timeout", "60")
        self.wait_listening(True)
        return self

    def wait_listening(self, up: bool, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if up:
                        return
            except OSError:
                if not up:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"rabbit node {self.node} listening={not up} after {timeout}s")

    def stop_app(self) -> None:
        self._ctl("stop_app")
        self.wait_listening(False)

    def start_app(self) -> None:
        self._ctl("start_app")
        self.wait_listening(True)

    def shutdown(self) -> None:
        try:
            self._ctl("stop", timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
