"""``Idempotency-Key`` on POST: the same key and body replay the first response (nothing is
published twice); the same key with another body is 422. Keys live ``api.idempotency_ttl_s``.

Stored in Redis per caller: ``taskstream:idem:{user or ip}:{key}``. A key is first claimed with
SET NX as "in flight" (a concurrent duplicate gets 409), then replaced by the final response.
5xx responses are not stored, so a client can retry after a 503. Redis down -> 503: without the
store the promise of "at most once" cannot be kept.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Final, cast

import msgspec
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskstream.errors import (
    ConflictError,
    FieldError,
    UnavailableError,
    ValidationFailedError,
)
from taskstream.principal import Principal
from taskstream.web.ratelimit import client_ip

logger = logging.getLogger(__name__)

SCOPE_KEY: Final = "taskstream.idempotency_key"
MAX_KEY_LENGTH: Final = 255
IN_FLIGHT_TTL_S: Final = 60
REPLAYED_HEADERS: Final = {b"content-type", b"location", b"retry-after"}
ID_NAMESPACE: Final = uuid.UUID("0f6f4f0e-6a70-4c3e-9d39-5a2b8f9d1c42")
# Routes answering credentials: nothing is stored (tokens would sit in Redis for the key's
# lifetime, and a replayed refresh would skip reuse detection); the key is ignored there.
# Registration answers no secret, so its key still replays the first answer.
# One-time tickets are credentials too (a replay would answer a used ticket).
NOT_STORED_PATHS: Final = frozenset(
    {"/auth/login", "/auth/refresh", "/notifications/stream-ticket", "/ops/tickets"}
)


class StoredResponse(msgspec.Struct, array_like=True):
    fingerprint: str
    status: int = 0  # 0: still in flight
    headers: list[tuple[bytes, bytes]] = []
    body: bytes = b""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StoredResponse)


def idempotency_key(scope: Scope) -> str | None:
    """The caller-scoped Idempotency-Key of this request, if it sent one."""
    return cast(dict[str, Any], scope).get(SCOPE_KEY)


def derived_id(scoped_key: str, *parts: object) -> uuid.UUID:
    """A stable id for the n-th thing a keyed request creates: a retry makes the same ids."""
    return uuid.uuid5(ID_NAMESPACE, ":".join([scoped_key, *map(str, parts)]))


async def serve_idempotent(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, raw_key: bytes
) -> None:
    """Run ``app`` for a POST that carries an Idempotency-Key: replay the stored response of an
    earlier request with the same key and body, refuse a different body (422) or a concurrent
    duplicate (409), else run it and store its response. Called by ``guard.RequestGuard``
    only when the header is present, so requests without a key pay nothing."""
    if scope["path"].rstrip("/") in NOT_STORED_PATHS:
        await app(scope, receive, send)
        return
    key = raw_key.decode("latin-1").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailedError(
            [FieldError("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")]
        )
    state = scope["app"].state
    redis: Redis = state.redis
    user = scope.get("user")
    owner = str(user.user_id) if isinstance(user, Principal) else f"ip:{client_ip(scope)}"
    scoped_key = f"taskstream:idem:{owner}:{key}"
    body = await _read_body(receive, state.settings.api.max_body_bytes)
    fingerprint = hashlib.sha256(scope["path"].encode() + b"\0" + body).hexdigest()
    ttl = state.settings.api.idempotency_ttl_s

    stored = await _claim(redis, scoped_key, fingerprint)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise ValidationFailedError(
                [FieldError("Idempotency-Key", "was already used with a different request")],
                detail="The Idempotency-Key was used with a different request body",
            )
        if stored.status == 0:
            raise ConflictError("A request with this Idempotency-Key is still in progress")
        await _replay(send, stored)
        return

    cast(dict[str, Any], scope)[SCOPE_KEY] = scoped_key
    captured = StoredResponse(fingerprint)
    sent_body = False

    async def replay_receive() -> Any:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    async def capture_send(message: Any) -> None:
        if message["type"] == "http.response.start":
            captured.status = message["status"]
            captured.headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() in REPLAYED_HEADERS
            ]
        elif message["type"] == "http.response.body":
            captured.body += message.get("body", b"")
        await send(message)

    try:
        await app(scope, replay_receive, capture_send)
    finally:
        await _finish(redis, scoped_key, captured, ttl)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _claim(redis: Redis, key: str, fingerprint: str) -> StoredResponse | None:
    """Claim the key (None) or return what is stored under it."""
    try:
        claimed = await redis.set(
            key, _encoder.encode(StoredResponse(fingerprint)), nx=True, ex=IN_FLIGHT_TTL_S
        )
        if claimed:
            return None
        raw = await redis.get(key)
    except RedisError as exc:
        logger.warning("idempotency store unavailable: %r", exc)
        raise UnavailableError("Idempotency keys cannot be checked right now", 2) from exc
    if raw is None:  # expired between SET and GET: treat as ours next time
        raise ConflictError("A request with this Idempotency-Key is still in progress")
    return _decoder.decode(raw if isinstance(raw, bytes) else raw.encode())


async def _finish(redis: Redis, key: str, response: StoredResponse, ttl: int) -> None:
    try:
        if 0 < response.status < 500:
            await redis.set(key, _encoder.encode(response), ex=ttl)
        else:  # failed (503, crash): let the client retry with the same key
            await redis.delete(key)
    except RedisError as exc:
        logger.warning("could not store the idempotent response for %s: %r", key, exc)


async def _replay(send: Send, stored: StoredResponse) -> None:
    headers = [*stored.headers, (b"idempotent-replayed", b"true")]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
