"""Real servers for the attachment tests: an S3 API (moto in server mode) and clamd, each a
child process on a free loopback port, stopped (or killed) by the test that owns it."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pytest

from taskstream.infra.clamav import INSTALL_HINT, ClamdAddress, clamd_binary, write_config
from taskstream.settings import AttachmentSettings
from tests.integration.http_support import free_port
from tests.processes import ChildProcess

S3_ACCESS_KEY_ID = "taskstream-test"
S3_SECRET_ACCESS_KEY = "taskstream-test-secret"
S3_REGION = "us-east-1"


@dataclass
class S3Server:
    """``moto_server`` on 127.0.0.1: a real S3 HTTP API (in memory), one per owner."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: ChildProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> S3Server:
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = ChildProcess(argv, log=self.directory / f"moto-{self.port}.log").start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.process.alive():
                pytest.fail(f"moto_server exited: {self.process.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"moto_server did not answer on {self.endpoint} within {timeout_s}s")

    def create_bucket(self, name: str) -> str:
        """A new bucket (path-style PUT; moto needs no signature for it)."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status
        return name

    def incomplete_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads started and neither completed nor aborted."""
        url = f"{self.endpoint}/{bucket}?uploads"
        with urllib.request.urlopen(url, timeout=10) as response:
            tree = ElementTree.fromstring(response.read())
        return [element.text or "" for element in tree.iter() if element.tag.endswith("}Key")]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def settings(self, bucket: str, prefix: str = "", **overrides: object) -> AttachmentSettings:
        """AttachmentSettings for ``s3://bucket/prefix`` on this server."""
        values: dict[str, object] = {
            "storage_url": f"s3://{bucket}/{prefix}".rstrip("/"),
            "s3_endpoint": self.endpoint,
            "s3_allow_http": True,
            "s3_access_key_id": S3_ACCESS_KEY_ID,
            "s3_secret_access_key": S3_SECRET_ACCESS_KEY,
            "s3_region": S3_REGION,
            **overrides,
        }
        return AttachmentSettings.model_validate(values)


@dataclass
class PrivateClamd:
    """A clamd of its own on a free port with the shipped EICAR database, so that a test may
    kill it without touching the one `taskstream infra up` started."""

    max_upload_bytes: int = 100 * 1024 * 1024
    unix_socket: bool = False
    port: int = field(default_factory=free_port)
    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="ts-clamd-", dir="/tmp"))
    )
    process: ChildProcess | None = None

    @property
    def address(self) -> str:
        if self.unix_socket:
            return f"unix://{self.directory / 'clamd.sock'}"
        return f"tcp://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> PrivateClamd:
        binary = clamd_binary()
        if binary is None:
            pytest.fail(f"{INSTALL_HINT} (`make clamav` installs it; `make test` runs it)")
        config = write_config(
            ClamdAddress.parse(self.address),
            directory=self.directory,
            database_dir=None,
            max_upload_bytes=self.max_upload_bytes,
        )
        argv = [binary, "--config-file", str(config)]
        self.process = ChildProcess(argv, log=self.directory / "clamd.log").start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.process.alive():
                pytest.fail(f"clamd exited: {self.process.output()[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"clamd did not answer on {self.address} within {timeout_s}s")

    def _answers(self) -> bool:
        if not self.unix_socket:
            return ping_blocking(self.port)
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.directory / "clamd.sock"))
                sock.sendall(b"zPING\0")
                return sock.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def ping_blocking(port: int, host: str = "127.0.0.1") -> bool:
    """clamd's PING without an event loop (fixtures start servers synchronously)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).rstrip(b"\0") == b"PONG"
    except OSError:
        return False


def unique_key(prefix: str = "test") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"
