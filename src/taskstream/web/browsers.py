"""What a browser on another origin needs from the API: CORS, configured by
``api.cors_origins`` (off when empty).

Preflights are answered by Litestar's CORS layer, which runs before the app's middleware: they
are neither authenticated nor rate limited. Credentials are bearer tokens, never cookies, so
``Access-Control-Allow-Credentials`` stays off.
"""

from __future__ import annotations

from typing import Final

from litestar.config.cors import CORSConfig

from taskstream.settings import ApiSettings

# Request headers a browser client sends beyond the CORS-safelisted ones.
ALLOWED_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Last-Event-ID",
    "traceparent",
    "tracestate",
    "X-Request-Id",
)
# Response headers the API sets that a browser client reads (the rest are hidden from scripts
# unless listed): limits and retries, where a created thing is, idempotent replays, request
# and trace ids for support, the scheme a 401 asks for, a 405's methods.
EXPOSED_HEADERS: Final = (
    "Retry-After",
    "Location",
    "Idempotent-Replayed",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-Id",
    "X-Trace-Id",
    "WWW-Authenticate",
    "Allow",
)
ALLOWED_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PREFLIGHT_MAX_AGE_S: Final = 600


def cors_config(api: ApiSettings) -> CORSConfig | None:
    """The CORS configuration for ``api.cors_origins``; None (no CORS) when empty."""
    if not api.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(api.cors_origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
