"""Does each dependency answer at its configured address? Real protocol checks, bounded in time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import pika
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from taskstream.settings import Settings

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return self.host if self.port == 0 else f"{self.host}:{self.port}"  # 0: a socket path


@dataclass(frozen=True, slots=True)
class ProbeResult:
    endpoint: Endpoint
    ok: bool
    detail: str


def endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Host and port of every dependency, parsed from the configured URLs."""
    pg = urlsplit(settings.db.url.replace("+asyncpg", ""))
    redis = urlsplit(settings.redis.url)
    rabbit = urlsplit(settings.rabbit.url)
    kafka_host, _, kafka_port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    return {
        "postgres": Endpoint("postgres", pg.hostname or "127.0.0.1", pg.port or 5432),
        "redis": Endpoint("redis", redis.hostname or "127.0.0.1", redis.port or 6379),
        "rabbitmq": Endpoint("rabbitmq", rabbit.hostname or "127.0.0.1", rabbit.port or 5672),
        "kafka": Endpoint("kafka", kafka_host or "127.0.0.1", int(kafka_port or 9092)),
    }


def asyncpg_dsn(sqlalchemy_url: str, database: str | None = None) -> str:
    """The asyncpg form of a SQLAlchemy URL, optionally pointing at another database."""
    dsn = sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is not None:
        base, _, rest = dsn.rpartition("/")
        query = rest.partition("?")[2]
        dsn = f"{base}/{database}" + (f"?{query}" if query else "")
    return dsn


async def tcp_open(endpoint: Endpoint, connect_timeout_s: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), connect_timeout_s
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def probe_postgres(settings: Settings) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"), timeout=PROBE_TIMEOUT_S)
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"PostgreSQL {version}"


async def probe_redis(settings: Settings) -> str:
    client = Redis.from_url(settings.redis.url, socket_timeout=PROBE_TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "PONG"


def _probe_rabbit_blocking(url: str) -> str:
    params = pika.URLParameters(url)
    params.socket_timeout = PROBE_TIMEOUT_S
    params.blocked_connection_timeout = PROBE_TIMEOUT_S
    params.connection_attempts = 1
    connection = pika.BlockingConnection(params)
    try:
        props = connection._impl.server_properties
        version = props.get("version", b"?")
        return f"RabbitMQ {version.decode() if isinstance(version, bytes) else version}"
    finally:
        connection.close()


async def probe_rabbit(settings: Settings) -> str:
    return await asyncio.to_thread(_probe_rabbit_blocking, settings.rabbit.url)


async def probe_kafka(settings: Settings) -> str:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=3000
    )
    await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
    try:
        topics = await asyncio.wait_for(admin.list_topics(), PROBE_TIMEOUT_S)
    finally:
        await admin.close()
    return f"{len(topics)} topics"


PROBES = {
    "postgres": probe_postgres,
    "redis": probe_redis,
    "rabbitmq": probe_rabbit,
    "kafka": probe_kafka,
}


async def probe(settings: Settings, name: str) -> ProbeResult:
    """Check one dependency; never raises."""
    endpoint = endpoints(settings)[name]
    if not await tcp_open(endpoint):
        return ProbeResult(endpoint, False, "connection refused")
    try:
        detail = await asyncio.wait_for(PROBES[name](settings), PROBE_TIMEOUT_S + 1)
    except Exception as exc:
        return ProbeResult(endpoint, False, f"{type(exc).__name__}: {exc}"[:200])
    return ProbeResult(endpoint, True, detail)


def clamd_endpoint(settings: Settings) -> Endpoint:
    """clamd's address; a Unix socket is an endpoint with port 0."""
    from taskstream.infra.clamav import ClamdAddress  # noqa: PLC0415

    address = ClamdAddress.parse(settings.attachments.clamd_address)
    if address.socket_path is not None:
        return Endpoint("clamd", str(address.socket_path), 0)
    return Endpoint("clamd", address.host or "127.0.0.1", address.port or 3310)


async def probe_clamd(settings: Settings) -> ProbeResult:
    """Whether clamd answers VERSION at ``attachments.clamd_address``; never raises.

    Kept out of ``probe_all``: only the attachment pipeline needs clamd, and without it
    attachments wait in ``scanning`` while everything else works. The command is spoken here
    rather than through ``attachments.scanner``: infra sits below the area packages (web
    imports it), and importing an area from here would close an import loop."""
    endpoint = clamd_endpoint(settings)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            if endpoint.port == 0:
                reader, writer = await asyncio.open_unix_connection(endpoint.host)
            else:
                reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            try:
                writer.write(b"zVERSION\0")
                await writer.drain()
                answer = await reader.readuntil(b"\0")
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return ProbeResult(endpoint, False, f"{type(exc).__name__}: {exc}"[:200])
    return ProbeResult(endpoint, True, answer[:-1].decode("utf-8", "replace").strip())


async def probe_all(settings: Settings) -> dict[str, ProbeResult]:
    names = list(PROBES)
    results = await asyncio.gather(*(probe(settings, n) for n in names))
    return dict(zip(names, results, strict=True))
