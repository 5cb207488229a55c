"""The files of one load-test run directory, written once here and read by the scenarios,
the CLI and the verification:

    <run_dir>/credentials.json         seeded users, their tokens and projects (``Credentials``)
    <run_dir>/commands/<process>.jsonl one accepted command per line (``RecordedCommand``),
                                       one append-only file per locust process, so a master
                                       and any number of workers write without coordinating
    <run_dir>/verification.json/.txt   what ``taskstream loadtest verify`` found
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

CREDENTIALS_FILE = "credentials.json"
COMMANDS_DIR = "commands"
VERIFICATION_JSON = "verification.json"
VERIFICATION_TEXT = "verification.txt"


class SeededProject(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    member_ids: list[uuid.UUID]


class SeededUser(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    name: str
    personal_project_id: uuid.UUID | None
    access_token: str
    refresh_token: str
    project_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class Credentials(msgspec.Struct, rename="camel"):
    run_id: str
    password: str  # the same for every user of the run (hashed once)
    users: list[SeededUser]
    projects: list[SeededProject]


class RecordedCommand(msgspec.Struct, rename="camel"):
    """A command the API answered 202 for: ids from the response, client time of the 202."""

    command_id: uuid.UUID
    task_id: uuid.UUID | None
    accepted_at: float  # unix time at the client
    kind: str  # the request group that sent it (create, batch, assign, ...)


def write_credentials(run_dir: Path, credentials: Credentials) -> Path:
    """Write the credentials file atomically (a reader never sees half of it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CREDENTIALS_FILE
    partial = path.with_suffix(".partial")
    partial.write_bytes(msgspec.json.format(msgspec.json.encode(credentials)))
    partial.chmod(0o600)  # bearer tokens and a password
    partial.replace(path)
    return path


def read_credentials(run_dir: Path) -> Credentials:
    return msgspec.json.decode((run_dir / CREDENTIALS_FILE).read_bytes(), type=Credentials)


class CommandLog:
    """This process's append-only record of accepted commands.

    Lines are buffered and flushed every ``flush_every`` records or ``flush_interval_s``
    seconds and on ``close``; a line is written whole (one ``write`` per flush), so a reader
    of a killed process's file sees complete lines plus at most one torn last line.
    """

    def __init__(self, run_dir: Path, flush_every: int = 200, flush_interval_s: float = 1.0):
        directory = run_dir / COMMANDS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        self.path = directory / name
        self._file: IO[bytes] = self.path.open("ab")
        self._buffer: list[bytes] = []
        self._encoder = msgspec.json.Encoder()
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._flushed_at = time.monotonic()
        self.count = 0

    def record(self, command_id: str, task_id: str | None, kind: str) -> None:
        line = self._encoder.encode(
            RecordedCommand(
                uuid.UUID(command_id), uuid.UUID(task_id) if task_id else None, time.time(), kind
            )
        )
        self._buffer.append(line + b"\n")
        self.count += 1
        if (
            len(self._buffer) >= self._flush_every
            or time.monotonic() - self._flushed_at > self._flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write(b"".join(self._buffer))
            self._buffer.clear()
        self._file.flush()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


_decoder = msgspec.json.Decoder(RecordedCommand)


def read_recorded(run_dir: Path) -> Iterator[RecordedCommand]:
    """Every recorded command of the run, from every process's file; a torn last line (a
    process killed mid-write) is skipped."""
    for path in sorted((run_dir / COMMANDS_DIR).glob("*.jsonl")):
        with path.open("rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    continue
                try:
                    yield _decoder.decode(line)
                except msgspec.DecodeError:
                    continue
