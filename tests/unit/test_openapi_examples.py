"""The OpenAPI document is user documentation: every operation of the served app has an id, a
description, an example of each JSON body it takes and returns, and its problem responses, and
every example is valid against its own schema (schemathesis sends request examples as they are,
and a reader copies them). Checked on the generated document, so a route added later is held
to the same rule without anyone remembering to."""

from __future__ import annotations

import copy
from typing import Any, get_args, get_origin

import msgspec
import pytest
from jsonschema import Draft202012Validator
from litestar import Response
from litestar.handlers import HTTPRouteHandler

from taskstream.app import create_app
from taskstream.settings import Settings

METHODS = {"get", "head", "put", "post", "patch", "delete"}
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
# Every operation answers these as problem+json (auth, limits and body checks run in middleware).
PROBLEMS = {400, 401, 404, 405, 413, 415, 422, 429, 500, 503}
# Success bodies that are not JSON, so there is no JSON example to give; any other
# operation answering a non-JSON success fails until it is listed here with its reason.
NON_JSON_SUCCESS = {
    "getMetrics": "Prometheus text exposition format, written by prometheus_client",
    "streamNotifications": "text/event-stream: a never-ending SSE stream, not a document",
    "getOpsDashboard": "the operators' HTML page",
    "downloadAttachment": "the stored file's own bytes, streamed with its content type",
    "getAttachmentThumbnail": "image/jpeg bytes of the stored image's thumbnail",
    "downloadAttachmentByLink": "the stored file's own bytes through a signed link",
}

APP = create_app(Settings())
DOCUMENT: dict[str, Any] = APP.openapi_schema.to_schema()
COMPONENTS: dict[str, Any] = DOCUMENT["components"]["schemas"]
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in METHODS
]


def _handlers() -> dict[str, HTTPRouteHandler]:
    found = {}
    for route in APP.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema:
                found[handler.operation_id] = handler
    return found


HANDLERS = _handlers()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _examples(media: dict[str, Any]) -> list[Any]:
    """The example values a reader (and schemathesis) sees for one media type: the media
    type's own ``example``/``examples``, else the schema's (through ``$ref``, ``allOf`` and
    the alternatives of an optional body), else, for an array, its items' examples."""
    if "example" in media:
        return [media["example"]]
    if media.get("examples"):
        return [e["value"] for e in media["examples"].values() if "value" in e]
    return _schema_examples(media.get("schema", {}))


def _schema_examples(schema: dict[str, Any]) -> list[Any]:
    if schema.get("examples"):
        return list(schema["examples"])
    if "$ref" in schema:
        return _schema_examples(_resolve(schema))
    # allOf: a reference with metadata beside it; oneOf/anyOf: an optional body (T | None)
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        if found := _schema_examples(part):
            return found
    if schema.get("type") == "array" and "items" in schema:
        return [[item] for item in _schema_examples(schema["items"])]
    return []


def _strict(node: Any) -> Any:
    """A copy of a schema in which objects refuse properties they do not declare, so an
    example with a misspelt (or snake_case) field fails instead of passing as an extra."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


STRICT_COMPONENTS = _strict(copy.deepcopy(COMPONENTS))


def _schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    root = {**_strict(schema), "components": {"schemas": STRICT_COMPONENTS}}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


def _decode_error(annotation: Any, value: Any) -> str | None:
    """Why the server's own type would refuse ``value`` (None: it accepts it)."""
    if get_origin(annotation) is Response or annotation is Response:
        args = get_args(annotation)
        if not args:
            return None
        annotation = args[0]
    try:
        msgspec.json.decode(msgspec.json.encode(value), type=annotation, strict=True)
    except (msgspec.ValidationError, TypeError) as exc:
        return str(exc)
    return None


def _success_responses(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {code: r for code, r in operation["responses"].items() if code.startswith("2")}


def test_the_walk_sees_the_operations() -> None:
    ids = {operation.get("operationId") for _, operation in OPERATIONS}
    assert {"listTasks", "createTask", "getHealth", "streamNotifications"} <= ids
    assert set(NON_JSON_SUCCESS) <= ids, "an exemption for an operation that no longer exists"


def test_every_operation_has_an_id_and_a_description() -> None:
    """The description is the handler's docstring (Litestar always derives a summary from the
    function name, so only the description says anything)."""
    offenders = [
        where
        for where, operation in OPERATIONS
        if not operation.get("operationId") or not (operation.get("description") or "").strip()
    ]
    assert offenders == []


def test_every_json_request_body_has_an_example() -> None:
    offenders = [
        f"{where} ({operation['operationId']}) {media_type}"
        for where, operation in OPERATIONS
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items()
        if "json" in media_type and not _examples(media)
    ]
    assert offenders == []


def test_every_json_success_response_has_an_example() -> None:
    offenders = []
    for where, operation in OPERATIONS:
        for code, response in _success_responses(operation).items():
            for media_type, media in response.get("content", {}).items():
                if media_type != JSON:
                    if operation["operationId"] not in NON_JSON_SUCCESS:
                        offenders.append(f"{where} {code} {media_type}: not JSON, not exempt")
                elif not _examples(media):
                    offenders.append(f"{where} ({operation['operationId']}) {code}")
    assert offenders == []


def test_every_operation_documents_its_problems_as_problem_json() -> None:
    offenders = []
    for where, operation in OPERATIONS:
        errors = {int(c): r for c, r in operation["responses"].items() if c[0] in "45"}
        if missing := PROBLEMS - set(errors):
            offenders.append(f"{where}: {sorted(missing)} undocumented")
        for code, response in errors.items():
            schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ProblemDetails":
                offenders.append(f"{where} {code}: not problem+json")
    assert offenders == []


def _all_examples() -> list[tuple[str, dict[str, Any], Any, Any]]:
    """(where, operation id, schema, example, the server's type) of every body example."""
    found = []
    for where, operation in OPERATIONS:
        handler = HANDLERS[operation["operationId"]]
        body = operation.get("requestBody", {}).get("content", {}).get(JSON)
        if body is not None:
            data = handler.parsed_fn_signature.parameters["data"].annotation
            found += [(f"{where} body", body["schema"], e, data) for e in _examples(body)]
        returned = handler.parsed_fn_signature.return_type.annotation
        for code, response in _success_responses(operation).items():
            media = response.get("content", {}).get(JSON)
            if media is not None:
                found += [
                    (f"{where} {code}", media["schema"], e, returned) for e in _examples(media)
                ]
    return found


EXAMPLES = _all_examples()


@pytest.mark.parametrize(
    ("where", "schema", "example", "annotation"), EXAMPLES, ids=[e[0] for e in EXAMPLES]
)
def test_every_example_is_valid_for_its_schema_and_its_type(
    where: str, schema: dict[str, Any], example: Any, annotation: Any
) -> None:
    """Against the document (fields, formats: uuid, RFC 3339 date-time) and against the
    struct the server decodes or encodes (the rules the document cannot express)."""
    assert _schema_errors(schema, example) == [], where
    assert _decode_error(annotation, example) is None, where
