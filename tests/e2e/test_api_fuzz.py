"""schemathesis against the live OpenAPI schema of a real `taskstream api` process, with a
valid token: every operation, no 5xx, no response that violates the schema. Bounded (~1 min)
so it runs in the default `make test`; `make fuzz` runs only this."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskstream.settings import Settings
from tests.integration.http_support import PASSWORD, ApiServer, relaxed_limits

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(240)]

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzz_server(settings: Settings, database: str, topics) -> Iterator[ApiServer]:
    # GET /commands/{id}?wait= is capped by the server; keep the cap short for the fuzzer
    api = settings.api.model_copy(update={"command_wait_max_s": 1.0})
    server = ApiServer(relaxed_limits(settings).model_copy(update={"api": api})).start()
    yield server
    server.stop()


def _token(server: ApiServer) -> str:
    # a fresh account per call: the fuzzer's failed logins count against the accounts it saw
    email = f"fuzz-{uuid.uuid4().hex[:12]}-{server.port}@example.com"
    httpx.post(
        f"{server.url}/auth/register", json={"name": "Fuzz", "email": email, "password": PASSWORD}
    )
    login = httpx.post(f"{server.url}/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return login.json()["accessToken"]


def test_schemathesis_finds_no_server_errors_or_schema_violations(fuzz_server, tmp_path: Path):
    token = _token(fuzz_server)
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "run",
            f"{fuzz_server.url}/schema/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance,"
            "content_type_conformance,status_code_conformance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            # one thread: CPython 3.11's ast.parse is not thread-safe (gh-106905, "AST
            # constructor recursion depth mismatch"), and hypothesis parses lambdas' source
            # while schemathesis builds strategies, so two workers crashed it now and then
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--seed",
            "1",
            # a never-ending text/event-stream: nothing for a request/response fuzzer to check
            "--exclude-path",
            "/notifications/stream",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output.lower(), output[-3000:]


# --- an explicit adversarial pass over every operation of the schema ------------------------
# schemathesis explores at random; this pass sends, to every route, every value that reached
# PostgreSQL or the decoder badly: NUL in each string (body fields and query parameters), each
# datetime outside what PostgreSQL and Python both represent after conversion to UTC, extreme
# numbers, a huge string, and deeply nested bodies. None may answer 5xx.

NULS = ["\u0000", "a\u0000b"]
DATETIMES = [
    "9999-12-31T23:00:00-05:00",  # overflows on conversion to UTC
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59.999999Z",  # the edges themselves are storable
    "0001-01-01T00:00:00Z",
    "2030-01-01T00:00:00",  # no offset
    "10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
]
NUMBERS: list[object] = [-1, 0, 2**63, -(2**70), 1e308, -1e308]
HUGE = "x" * 200_000
DEEP_BODIES = [b"[" * 100_000, b"[" * 1000 + b"]" * 1000, b'{"a":' * 5000 + b"1" + b"}" * 5000]


class Schema:
    """Just enough of OpenAPI 3.1 to build a valid body and walk its leaves."""

    def __init__(self, document: dict) -> None:
        self.document = document

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = self.document["components"]["schemas"][name]
        return node

    def alternatives(self, node: dict) -> list[dict]:
        node = self.resolve(node)
        options = node.get("oneOf") or node.get("anyOf")
        if not options:
            return [node]
        return [self.resolve(o) for o in options if self.resolve(o).get("type") != "null"]

    def sample(self, node: dict, ids: dict[str, str], name: str = "") -> object:
        node = self.alternatives(node)[0]
        kind = node.get("type")
        if "enum" in node:
            return node["enum"][0]
        if "const" in node:
            return node["const"]
        if kind == "object" or "properties" in node:
            props = node.get("properties", {})
            return {key: self.sample(value, ids, key) for key, value in props.items()}
        if kind == "array":
            return [self.sample(node.get("items", {}), ids, name)]
        if kind == "integer":
            return max(1, node.get("minimum", 1))
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return True
        if node.get("format") == "uuid":
            return ids.get(name, str(uuid.uuid4()))
        if node.get("format") == "date-time":
            return "2030-01-01T00:00:00Z"
        if name == "url":
            return "https://example.com/hook"
        if name in ("events", "eventType"):
            return "task.created"
        return "v" * max(1, node.get("minLength", 1))


def _leaves(value: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _leaves(inner, (*path, index))
    else:
        yield path, value


def _replaced(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
    copy[path[0]] = _replaced(copy[path[0]], path[1:], new)
    return copy


def _bad_bodies(body: object) -> Iterator[bytes]:
    import json

    for path, leaf in _leaves(body):
        if isinstance(leaf, str):
            candidates: list[object] = [*NULS, HUGE, *DATETIMES]
        elif isinstance(leaf, bool):
            candidates = ["\u0000"]
        elif isinstance(leaf, int | float):
            candidates = [*NUMBERS, "\u0000"]
        else:
            candidates = ["\u0000"]
        for candidate in candidates:
            yield json.dumps(_replaced(body, path, candidate)).encode()
    yield json.dumps("\u0000").encode()
    yield b'{"\\u0000": "\\u0000"}'
    yield from DEEP_BODIES


def _ids(server: ApiServer, token: str) -> dict[str, str]:
    """Ids of real objects, so requests get past 404 to the code that reads their input."""
    headers = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/users/me", headers=headers).json()
    project = me["personalProjectId"]
    task = httpx.post(f"{server.url}/tasks", json={"title": "target"}, headers=headers).json()
    hook = httpx.post(
        f"{server.url}/projects/{project}/webhooks",
        json={"url": "https://example.com/hook", "events": ["*"], "secret": "s" * 16},
        headers=headers,
    ).json()
    team = httpx.post(f"{server.url}/projects", json={"name": "Fuzz team"}, headers=headers).json()
    invitation = httpx.post(
        f"{server.url}/projects/{team['id']}/invitations",
        json={"email": f"invitee-{uuid.uuid4().hex[:8]}@example.com", "role": "member"},
        headers=headers,
    ).json()
    # every path parameter gets an id: a literal "{name}" in a path is a 404 from routing,
    # which never reads the route's input
    return {
        "project_id": project,
        "projectId": project,
        "task_id": task["taskId"],
        "command_id": task["commandId"],
        "webhook_id": hook["id"],
        "user_id": me["id"],
        "userId": me["id"],
        "assigneeId": me["id"],
        "reviewerId": me["id"],
        "notification_id": str(uuid.uuid4()),
        "invitation_id": invitation["id"],
        # no comment without an applied task (the fuzz server runs no consumer): a well-formed
        # unknown id still reaches the route's body validation
        "comment_id": str(uuid.uuid4()),
    }


def test_every_route_refuses_unstorable_input_without_a_server_error(fuzz_server):
    token = _token(fuzz_server)
    document = httpx.get(f"{fuzz_server.url}/schema/openapi.json").json()
    schema = Schema(document)
    ids = _ids(fuzz_server, token)
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=fuzz_server.url, timeout=15) as http:

        def check(method: str, url: str, **kwargs) -> None:
            nonlocal sent
            sent += 1
            response = http.request(method, url, **kwargs)
            body = kwargs.get("content", b"")[:80] or kwargs.get("params")
            if response.status_code >= 500:
                failures.append(f"{method} {url} {body!r}: {response.status_code}")
            elif response.status_code >= 400 and not response.headers.get(
                "content-type", ""
            ).startswith("application/problem+json"):
                failures.append(f"{method} {url} {body!r}: not problem+json")

        for path, item in document["paths"].items():
            if path == "/notifications/stream":
                continue
            url = path
            for name, value in ids.items():
                url = url.replace("{" + name + "}", value)
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                verb = method.upper()
                params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
                for param in params:
                    for value in [*NULS, *DATETIMES, *map(str, NUMBERS), "nan", "x" * 4000]:
                        check(verb, url, params={param["name"]: value}, headers=auth)
                    # percent-escapes that decode to invalid UTF-8 or a lone surrogate
                    for raw in ("%FF", "%ED%A0%80", "%00", "%C0%80"):
                        check(verb, f"{url}?{param['name']}={raw}", headers=auth)
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" not in content:
                    continue
                body = schema.sample(content["application/json"]["schema"], ids)
                for raw in _bad_bodies(body):
                    headers = {**auth, "content-type": "application/json"}
                    check(verb, url, content=raw, headers=headers)
    assert sent > 500
    assert failures == [], "\n".join(failures[:40])
