"""RFC 9457 problem+json: every error the API returns, in one shape with a stable ``type``."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import ParameterKwarg
from litestar.types import Empty, ExceptionHandlersMap
from litestar.utils.scope.state import ScopeState

from taskstream.errors import DomainError, FieldError, UnavailableError, ValidationFailedError
from taskstream.fields import pattern_message
from taskstream.web.methods import allow_value

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
PROBLEM_BASE: Final = "https://taskstream.dev/problems/"

# Framework statuses -> (slug, title); domain errors carry their own.
_HTTP_SLUGS: Final[dict[int, tuple[str, str]]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation failed"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemFieldError(msgspec.Struct, rename="camel"):
    path: str
    message: str


class ProblemDetails(msgspec.Struct, rename="camel", omit_defaults=True):
    """RFC 9457 problem details; ``errors`` lists invalid fields for 422."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str,
) -> Response[ProblemDetails]:
    """A problem+json response; ``instance`` is the request's path (every problem names the
    request it answers, so a client's log line says which call failed)."""
    default_slug, default_title = _HTTP_SLUGS.get(status, ("error", "Error"))
    body = ProblemDetails(
        type=problem_type(slug or default_slug),
        title=title or default_title,
        status=status,
        detail=detail,
        instance=instance,
        errors=[ProblemFieldError(e.path, e.message) for e in errors] if errors else None,
    )
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# msgspec/litestar say "at `$.tasks[3].title`" or give "tasks[3].title"; clients want the latter.
_DOLLAR_PATH = re.compile(r"`\$\.?([^`]*)`")
# "missing required field `x`" (msgspec) and "field `x` must ..." (RequestStruct.__post_init__)
# are reported at the enclosing object; the field is named in the message.
_FIELD_IN_MESSAGE = re.compile(r"field `([^`]+)`")


def _join(prefix: str, path: str) -> str:
    if not prefix or prefix == "$":
        return path or "$"
    if not path or path == "$":
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _with_missing_field(path: str, message: str) -> str:
    """msgspec reports a missing or post-init-checked field at its parent object; point at
    the field itself."""
    named = _FIELD_IN_MESSAGE.search(message)
    return _join(path, named.group(1)) if named else path


def _readable(message: str) -> str:
    """The message without msgspec's regex or our ``field `x` `` prefix (the path says it)."""
    if message.startswith("field `"):
        message = message.split("` ", 1)[-1]
    return pattern_message(message)


def field_errors_from_litestar(
    extra: Any, wire_name: Callable[[str], str] | None = None
) -> list[FieldError]:
    """Turn litestar's ValidationException ``extra`` into field errors with JSON paths; a
    parameter (query, header, path, cookie) is named as the client sent it (``wire_name``)."""
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        path = str(item.get("key") or "")
        if path in ("data", ""):
            path = "$"
        elif item.get("source") != "body" and wire_name is not None:
            path = wire_name(path)
        message = str(item.get("message", "invalid"))
        path = _with_missing_field(path, message)
        errors.append(FieldError(path=path, message=_readable(message)))
    return errors


def field_error_from_msgspec(exc: msgspec.ValidationError, prefix: str = "") -> FieldError:
    text = str(exc)
    match = _DOLLAR_PATH.search(text)
    path = match.group(1) if match else ""
    message = text.split(" - at ", 1)[0]
    path = _with_missing_field(_join(prefix, path), message)
    return FieldError(path=path, message=_readable(message))


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client sent for the handler parameter ``key`` (its query, header or cookie
    alias, e.g. ``dueBefore`` for ``due_before``): Litestar reports the python name."""
    handler = request.scope.get("route_handler")
    parameter = handler.parsed_fn_signature.parameters.get(key) if handler is not None else None
    definition = getattr(parameter, "kwarg_definition", None)
    if isinstance(definition, ParameterKwarg):
        alias = definition.query or definition.header or definition.cookie
        return alias or getattr(definition, "name", None) or key
    return key


def _body_type(request: Request[Any, Any, Any]) -> Any:
    handler = request.scope.get("route_handler")
    if handler is None:
        return None
    return handler.parsed_fn_signature.parameters.get("data")


def empty_body_problem(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The one answer to a missing body on a route that takes one: 422 "A JSON body is
    required", naming each required field (or ``$`` when the body is not an object with
    required fields). None when the request had a body."""
    body_type = _body_type(request)
    if body_type is None:
        return None
    body = ScopeState.from_scope(request.scope).body
    if body is not Empty and body != b"":
        return None
    annotation = body_type.annotation
    errors: list[FieldError] = []
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        errors = [
            FieldError(path=field.encode_name, message="is required")
            for field in msgspec.structs.fields(annotation)
            if field.required
        ]
    return problem_response(
        422,
        "A JSON body is required",
        errors=errors or [FieldError(path="$", message="is required")],
        instance=request.url.path,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers: dict[str, str] | None = getattr(exc, "headers", None)
    if isinstance(exc, UnavailableError):
        headers = {**(headers or {}), "Retry-After": str(exc.retry_after_s)}
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        headers=headers,
        instance=request.url.path,
    )


def _validation_failed_handler(
    request: Request[Any, Any, Any], exc: ValidationFailedError
) -> Response[Any]:
    return problem_response(422, exc.detail, errors=exc.errors, instance=request.url.path)


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    instance = request.url.path
    if isinstance(exc, ValidationException) and exc.extra:
        empty = empty_body_problem(request)
        if empty is not None:
            return empty
        errors = field_errors_from_litestar(exc.extra, lambda key: _wire_name(request, key))
        source_is_body = any(isinstance(i, dict) and i.get("source") == "body" for i in exc.extra)
        if errors and source_is_body and errors[0].path == "$":
            # the body is valid JSON but not an object of the expected shape
            return problem_response(
                422, "The request body has the wrong shape", errors=errors, instance=instance
            )
        return problem_response(422, "The request is invalid", errors=errors, instance=instance)
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", "Bearer")
    if isinstance(exc, MethodNotAllowedException) and "allow" in headers:
        # HEAD is served wherever GET is (web/methods.py)
        methods = {m.strip() for m in headers.pop("allow").split(",") if m.strip()}
        headers["Allow"] = allow_value(methods)
    detail = exc.detail if status < 500 else None
    return problem_response(status, detail, headers=headers or None, instance=instance)


def _unhandled_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, None, instance=request.url.path)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error_handler,
    ValidationFailedError: _validation_failed_handler,
    HTTPException: _http_exception_handler,
    Exception: _unhandled_handler,
}


def problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails,
        description=description,
        media_type=PROBLEM_MEDIA_TYPE,
        generate_examples=False,
    )


COMMON_PROBLEMS: Final = {
    400: "Malformed JSON or request",
    401: "Missing, invalid or expired token",
    404: "Not found, or not visible to the caller",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Validation failed (field paths in `errors`)",
    429: "Rate limited (Retry-After and RateLimit-* headers)",
    503: "A dependency is unavailable (Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI response specs for the given error statuses (plus the ones every route has)."""
    wanted = {400, 401, 404, 405, 413, 415, 422, 429, 500, 503, *statuses}
    return {
        s: problem_spec(COMMON_PROBLEMS.get(s, _HTTP_SLUGS.get(s, ("", "Error"))[1]))
        for s in sorted(wanted)
    }


__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_MEDIA_TYPE",
    "ProblemDetails",
    "empty_body_problem",
    "field_error_from_msgspec",
    "problem_response",
    "problem_responses",
]

# keep MediaType imported for callers that build JSON responses next to problems
_ = MediaType
