"""Settings: typed, nested, validated at start, documented in .env.example."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from taskstream.cli.config import render_env_example
from taskstream.settings import PLACEHOLDER_SECRET, Settings
from tests.conftest import ROOT


def test_env_example_documents_every_variable_with_its_default() -> None:
    committed = (ROOT / ".env.example").read_text()
    assert committed == render_env_example(), "regenerate: taskstream config env-example"
    for variable, default in Settings.model_construct().as_env().items():
        assert f"{variable}={default}\n" in committed


def test_nested_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTREAM_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("TASKSTREAM_API__PORT", "9000")
    settings = Settings()
    assert settings.kafka.partitions == 12
    assert settings.api.port == 9000


def test_defaults_point_at_loopback_standard_ports() -> None:
    settings = Settings.model_construct()
    assert "127.0.0.1:5432" in settings.db.url
    assert "127.0.0.1:6379" in settings.redis.url
    assert "127.0.0.1:5672" in settings.rabbit.url
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8000)


def test_invalid_value_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTREAM_KAFKA__PARTITIONS", "zero")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()


@pytest.mark.parametrize("lanes", ["0", "17", "two"])
def test_apply_lanes_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, lanes: str) -> None:
    monkeypatch.setenv("TASKSTREAM_KAFKA__APPLY_LANES", lanes)
    with pytest.raises(ValidationError, match="apply_lanes"):
        Settings()


def test_placeholder_secret_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTREAM_ENVIRONMENT", "production")
    monkeypatch.delenv("TASKSTREAM_AUTH__JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("TASKSTREAM_AUTH__JWT_SECRET", "x" * 40)
    assert Settings(_env_file=None).environment == "production"  # type: ignore[call-arg]


@pytest.mark.parametrize("environment", ["development", "production"])
def test_the_published_placeholder_is_refused_outside_tests(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("TASKSTREAM_AUTH__JWT_SECRET", PLACEHOLDER_SECRET)
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(environment=environment, _env_file=None)  # type: ignore[call-arg]
    assert Settings(environment="test", _env_file=None).environment == "test"  # type: ignore[call-arg]


def test_development_generates_one_random_secret_into_the_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TASKSTREAM_AUTH__JWT_SECRET", raising=False)
    monkeypatch.setenv("TASKSTREAM_INFRA__STATE_DIR", str(tmp_path / "state"))
    first = Settings(environment="development", _env_file=None)  # type: ignore[call-arg]
    secret = first.auth.jwt_secret.get_secret_value()
    assert len(secret) >= 48 and secret != PLACEHOLDER_SECRET
    assert (tmp_path / "state" / "jwt-secret").stat().st_mode & 0o777 == 0o600
    # every later process started from the same state directory uses the same secret
    again = Settings(environment="development", _env_file=None)  # type: ignore[call-arg]
    assert again.auth.jwt_secret.get_secret_value() == secret
    assert first.as_env()["TASKSTREAM_AUTH__JWT_SECRET"] == secret
    monkeypatch.setenv("TASKSTREAM_INFRA__STATE_DIR", str(tmp_path / "elsewhere"))
    other = Settings(environment="development", _env_file=None)  # type: ignore[call-arg]
    assert other.auth.jwt_secret.get_secret_value() != secret
