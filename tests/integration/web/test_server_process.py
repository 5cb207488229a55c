"""`taskstream api` as a real granian process: body limits enforced before the body is read."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.integration.http_support import ApiServer, relaxed_limits


@pytest.fixture(scope="module")
def server(settings, database, topics):
    server = ApiServer(relaxed_limits(settings)).start()
    yield server
    server.stop()


def _raw_post(server: ApiServer, head_extra: str, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            f"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{head_extra}\r\n".encode()
            + body
        )
        return sock.recv(65536)


def test_announced_oversized_body_is_413_without_sending_it(server: ApiServer):
    size = server.settings.api.max_body_bytes * 50
    # only the headers are sent: the answer must not wait for 50 MB that never come
    answer = _raw_post(server, f"Content-Length: {size}\r\n", b"")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in answer


def test_chunked_body_is_cut_at_the_limit(server: ApiServer):
    limit = server.settings.api.max_body_bytes

    def chunks():
        yield b'{"email": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = httpx.post(
        f"{server.url}/auth/login",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413


def test_served_by_granian(server: ApiServer):
    response = httpx.get(f"{server.url}/schema/openapi.json", timeout=5)
    assert response.status_code == 200
    assert "BearerToken" in response.json()["components"]["securitySchemes"]
