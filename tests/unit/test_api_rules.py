"""Rules every route of the served app keeps, checked by walking the app's routes (so a route
added later is checked without anyone remembering to): camelCase on the wire (response fields,
query and header parameters), the one page-limit rule on every list, problem+json documented."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, get_args, get_origin

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg

from taskstream.app import create_app
from taskstream.settings import Settings
from taskstream.web.pagination import PageLimit

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Header names as sent on the wire (Last-Event-ID, Idempotency-Key, ...).
HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# GET lists that return everything at once, each bounded by a rule; any other list pages.
UNPAGED_LISTS = {
    "listWebhooks": "at most webhooks.max_per_project (20) per project",
    "listProjects": "the caller's own memberships (admins too), bounded by what one user joins",
    "findUsersByEmail": "an exact lookup: zero or one user",
}
PAGE_LIMIT_DEFINITION = get_args(PageLimit)[1]


def _handlers(app: Litestar) -> list[tuple[str, HTTPRouteHandler]]:
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema:
                found.append((route.path, handler))
    return found


def _structs(annotation: Any, seen: set[type]) -> None:
    """Every msgspec Struct reachable from a type annotation, into ``seen``."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation in seen:
            return
        seen.add(annotation)
        hints = typing.get_type_hints(annotation)
        for field in msgspec.structs.fields(annotation):
            _structs(hints[field.name], seen)
        return
    origin = get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in get_args(annotation):
            _structs(arg, seen)


def _wire_name(name: str, definition: Any) -> tuple[str, str]:
    """(where, name as sent) of a handler parameter."""
    if isinstance(definition, ParameterKwarg):
        if definition.header or type(definition).__name__ == "HeaderParameter":
            return "header", definition.header or definition.name or name
        if definition.cookie:
            return "cookie", definition.cookie
        return "query", definition.query or getattr(definition, "name", None) or name
    return "query", name


APP = create_app(Settings())
HANDLERS = _handlers(APP)
DEPENDENCIES = set(APP.dependencies) | {"state", "request", "scope", "data", "headers"}


def test_the_walk_sees_the_routes() -> None:
    operations = {h.operation_id for _, h in HANDLERS}
    assert {"listTasks", "listNotifications", "streamNotifications", "getHealth"} <= operations


def test_every_body_field_is_camel_case() -> None:
    """Request and response bodies alike."""
    offenders = []
    for path, handler in HANDLERS:
        seen: set[type] = set()
        _structs(handler.parsed_fn_signature.return_type.annotation, seen)
        body = handler.parsed_fn_signature.parameters.get("data")
        if body is not None:
            _structs(body.annotation, seen)
        for struct in seen:
            for field in msgspec.structs.fields(struct):
                if not CAMEL.match(field.encode_name):
                    offenders.append(f"{path} {struct.__name__}.{field.encode_name}")
    assert offenders == []


def test_every_query_parameter_is_camel_case() -> None:
    offenders = []
    for path, handler in HANDLERS:
        for name, field in handler.parsed_fn_signature.parameters.items():
            if name in DEPENDENCIES or name in handler.resolve_dependencies():
                continue
            if "{" + name in path:  # path parameters are not named on the wire
                continue
            where, wire = _wire_name(name, field.kwarg_definition)
            pattern = HEADER if where == "header" else CAMEL
            if not pattern.match(wire):
                offenders.append(f"{path} {where} {wire}")
    assert offenders == []


def test_every_list_takes_the_one_page_limit() -> None:
    """A GET answering a list or a page of items takes ``limit`` as web/pagination.PageLimit:
    at least 1 (422 below), capped at api.page_limit_max."""
    offenders = []
    for path, handler in HANDLERS:
        if "GET" not in handler.http_methods:
            continue
        returned = handler.parsed_fn_signature.return_type.annotation
        is_list = get_origin(returned) is list or (
            isinstance(returned, type)
            and issubclass(returned, msgspec.Struct)
            and "items" in returned.__struct_fields__
            and "next_cursor" in returned.__struct_fields__
        )
        limit = handler.parsed_fn_signature.parameters.get("limit")
        if limit is not None and limit.kwarg_definition != PAGE_LIMIT_DEFINITION:
            offenders.append(f"{path}: limit is not web.pagination.PageLimit")
        if is_list and limit is None and handler.operation_id not in UNPAGED_LISTS:
            offenders.append(f"{path}: a list without limit")
    assert offenders == []


def test_every_operation_documents_problem_json() -> None:
    for path, handler in HANDLERS:
        responses = handler.responses or {}
        assert {401, 404, 405, 422, 500} <= set(responses), path
