"""The JWT secret of a development or test installation: random, generated on first start into
the local state directory (``infra.state_dir``), and shared by every process started from the
same directory, so tokens issued by one API worker verify in another. Production must configure
``auth.jwt_secret`` (or RS* keys)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name


def local_jwt_secret(state_dir: Path) -> str:
    """The secret in ``state_dir``, created (mode 0600) if absent; concurrent first starts
    agree on one (exclusive create; the loser reads the winner's)."""
    path = state_dir / SECRET_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


def _read_when_written(path: Path) -> str:
    import time  # noqa: PLC0415 - only on the rare race

    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"{path} exists but is empty; delete it to generate a new secret")
