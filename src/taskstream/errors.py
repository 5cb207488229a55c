"""Domain errors: raised by services, turned into RFC 9457 problem+json by the app.

Services never import HTTP types; each error carries a stable ``type`` slug, a title and the
status code the API maps it to.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FieldError:
    """One invalid field: ``path`` like ``tasks[3].title`` or ``deadline``."""

    path: str
    message: str


class DomainError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class NotFoundError(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class ForbiddenError(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class UnauthorizedError(DomainError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class ConflictError(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class WebhookQuotaExceededError(ConflictError):
    slug, title = "webhook-quota-exceeded", "Webhook quota exceeded"


class ProjectArchivedError(ConflictError):
    """The project is archived: readable, but it takes no new task commands."""

    slug, title = "project-archived", "Project archived"


class RateLimitedError(DomainError):
    """Too many requests (a rate limit or a concurrency cap); ``headers`` say when to retry."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


class UnavailableError(DomainError):
    """A dependency (broker, database) cannot take the request now; retry later."""

    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class ValidationFailedError(Exception):
    """Invalid input: 422 with one entry per bad field."""

    errors: list[FieldError] = field(default_factory=list)
    detail: str = "The request is invalid"

    status = 422
    slug = "validation-error"
    title = "Validation failed"
