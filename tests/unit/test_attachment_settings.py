"""Attachment settings: the local store defaults under the state directory, env vars reach
the nested fields, and open_store picks the store by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskstream.attachments.storage import open_store
from taskstream.attachments.storage_local import LocalStore
from taskstream.attachments.storage_s3 import S3ObjectStore
from taskstream.settings import AttachmentSettings, InfraSettings, Settings


def test_unset_storage_url_is_a_directory_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(infra=InfraSettings(state_dir=tmp_path / "state"))
    assert settings.attachments.storage_url == (tmp_path / "state" / "attachments").as_uri()
    store = open_store(settings.attachments)
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "state" / "attachments").resolve()


def test_variables_reach_the_attachment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTREAM_ATTACHMENTS__STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("TASKSTREAM_ATTACHMENTS__S3_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("TASKSTREAM_ATTACHMENTS__S3_SECRET_ACCESS_KEY", "hunter2-xyz")
    monkeypatch.setenv("TASKSTREAM_ATTACHMENTS__CLAMD_ADDRESS", "unix:///run/clamd.ctl")
    settings = Settings()
    assert settings.attachments.storage_url == "s3://bucket/prefix"
    assert settings.attachments.s3_secret_access_key is not None
    assert settings.attachments.s3_secret_access_key.get_secret_value() == "hunter2-xyz"
    assert "hunter2-xyz" not in repr(settings.attachments)
    assert isinstance(open_store(settings.attachments), S3ObjectStore)


def test_defaults() -> None:
    attachments = AttachmentSettings()
    assert attachments.max_upload_bytes == 100 * 1024 * 1024
    assert attachments.project_quota_bytes == 10 * 1024**3
    assert (attachments.image_max_px, attachments.thumbnail_px) == (2048, 256)
    assert attachments.download_link_ttl_s == 300
    assert attachments.clamd_address == "tcp://127.0.0.1:3310"


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "file://otherhost/dir", "relative"])
def test_unknown_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|storage_url|bucket"):
        open_store(AttachmentSettings(storage_url=url))


def test_a_secret_without_its_key_id_is_refused_at_start() -> None:
    settings = AttachmentSettings(storage_url="s3://bucket", s3_secret_access_key="x")
    with pytest.raises(ValueError, match="AccessKeyId"):
        open_store(settings)
