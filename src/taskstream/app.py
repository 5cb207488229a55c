"""The Litestar application factory."""

from __future__ import annotations

from litestar import Litestar

from taskstream.health import HealthController
from taskstream.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API; resources are opened on startup and closed on shutdown."""
    settings = settings or get_settings()
    return Litestar(
        route_handlers=[HealthController],
        state=None,
        on_startup=[lambda app: setattr(app.state, "settings", settings)],
    )
