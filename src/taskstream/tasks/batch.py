"""Batch create validation: report every invalid item (index and field), not only the first."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.utils.scope.state import ScopeState

from taskstream.errors import FieldError
from taskstream.problems import (
    empty_body_problem,
    field_error_from_msgspec,
    field_errors_from_litestar,
    problem_response,
)
from taskstream.tasks.schemas import CreateTaskRequest


class _RawBatch(msgspec.Struct):
    tasks: list[msgspec.Raw]


_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)
_item_decoder = msgspec.json.Decoder(CreateTaskRequest, strict=True)


def batch_field_errors(body: bytes) -> list[FieldError]:
    """Every invalid item of a batch body, not just the first one msgspec stops at."""
    try:
        raw = _raw_batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        return [field_error_from_msgspec(exc)]
    except msgspec.DecodeError:
        return [FieldError("$", "is not valid JSON")]
    errors: list[FieldError] = []
    for index, item in enumerate(raw.tasks):
        try:
            _item_decoder.decode(item)
        except msgspec.ValidationError as exc:
            errors.append(field_error_from_msgspec(exc, prefix=f"tasks[{index}]"))
    return errors


def batch_validation_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    empty = empty_body_problem(request)
    if empty is not None:
        return empty
    body = ScopeState.from_scope(request.scope).body
    errors = batch_field_errors(body) if isinstance(body, bytes) else []
    if not errors:  # not a body problem after all: report litestar's own findings
        errors = field_errors_from_litestar(exc.extra)
    return problem_response(
        422,
        "Some tasks in the batch are invalid; nothing was published",
        errors=errors,
        instance=request.url.path,
    )
