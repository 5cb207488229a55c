"""The notification fixtures the reset-email test reuses (a fresh exchange, child processes,
an aiosmtpd sink)."""

from __future__ import annotations

from tests.integration.notifications.conftest import (  # fixtures shared with notifications
    cleanup_rabbit,
    notif_settings,
    processes,
    smtp_sink,
)

__all__ = ["cleanup_rabbit", "notif_settings", "processes", "smtp_sink"]
