"""The one way tests start real processes (`taskstream consume`, `taskstream api`, a private
broker or Redis): output to a log file (or discarded), a polite stop (SIGTERM, then SIGKILL
after a timeout) or a kill -9, exit codes kept, and nothing left running after the test."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def taskstream_argv(*args: str) -> list[str]:
    """``python -m taskstream <args>`` with this interpreter (the venv the tests run in)."""
    return [sys.executable, "-m", "taskstream", *args]


@dataclass
class ChildProcess:
    argv: Sequence[str]
    env: dict[str, str] | None = None
    log: Path | None = None  # None: output discarded
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)

    def start(self) -> ChildProcess:
        if self.log is None:
            self.process = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return self
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                list(self.argv), cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL (kill -9): no cleanup, no commit, no goodbye."""
        assert self.process is not None
        self.process.kill()
        self.exits.append(self.process.wait(10))

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit code (raises if it does not exit in time)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.exits.append(code)
        return code

    def stop(self, timeout: float = 10) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")
