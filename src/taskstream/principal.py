"""Who is calling: the authenticated user every endpoint and service receives."""

from __future__ import annotations

import uuid

import msgspec

from taskstream.enums import UserRole


class Principal(msgspec.Struct, frozen=True):
    """Derived from a verified access token (``sub`` and ``role`` claims)."""

    user_id: uuid.UUID
    role: UserRole

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN
