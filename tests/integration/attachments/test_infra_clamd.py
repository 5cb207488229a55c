"""`taskstream infra up` and clamd: started with its own config (the shipped EICAR database,
the upload limit as StreamMaxLength); when clamd is not installed, the install command."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskstream.infra as infra_ops
from taskstream.attachments.scanner import ClamdScanner
from taskstream.infra.clamav import EICAR, SHIPPED_DATABASE_DIR
from taskstream.infra.local import StateDir, stop_started
from taskstream.settings import Settings
from tests.integration.attachments.test_scanner import pieces
from tests.integration.http_support import free_port


def private(settings: Settings, tmp_path: Path, address: str) -> Settings:
    attachments = settings.attachments.model_copy(
        update={"clamd_address": address, "max_upload_bytes": 3 * 1024 * 1024}
    )
    infra = settings.infra.model_copy(update={"state_dir": tmp_path / "state"})
    return settings.model_copy(update={"attachments": attachments, "infra": infra})


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_infra_starts_clamd_with_the_shipped_database(
    settings: Settings, tmp_path: Path, transport: str
) -> None:
    address = (
        f"tcp://127.0.0.1:{free_port()}"
        if transport == "tcp"
        else f"unix://{tmp_path / 'run' / 'clamd.sock'}"
    )
    mine = private(settings, tmp_path, address)
    state = StateDir(mine.infra.state_dir)
    lines: list[str] = []
    try:
        await infra_ops.ensure_clamd(mine, state, state.load(), lines.append)
        assert "starting it locally" in lines[0]
        assert "up (started by taskstream): ClamAV" in lines[-1]
        config = (mine.infra.state_dir / "clamd" / "clamd.conf").read_text()
        assert f"DatabaseDirectory {SHIPPED_DATABASE_DIR}" in config
        assert f"StreamMaxLength {4 * 1024 * 1024}" in config  # upload limit + 1 MiB
        scanner = ClamdScanner(address, timeout_s=10)
        assert (await scanner.scan(pieces(EICAR))).clean is False
        # up again: the same clamd is used, nothing started
        again: list[str] = []
        await infra_ops.ensure_clamd(mine, state, state.load(), again.append)
        assert "already running" not in again[0] and "started by taskstream" in again[0]
    finally:
        for name, record in state.load().items():
            stop_started(name, record)
    assert await ClamdScanner(address, timeout_s=2).ping() is False


async def test_without_clamd_infra_says_how_to_install_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(infra_ops, "clamd_binary", lambda: None)
    mine = private(settings, tmp_path, f"tcp://127.0.0.1:{free_port()}")
    state = StateDir(mine.infra.state_dir)
    lines: list[str] = []
    await infra_ops.ensure_clamd(mine, state, state.load(), lines.append)
    assert len(lines) == 1
    assert "DOWN" in lines[0] and "apt-get install -y clamav-daemon" in lines[0]
    assert state.load() == {}
