"""Who is calling: the authenticated user every endpoint and service receives."""

from __future__ import annotations

import uuid

import msgspec

from taskstream.enums import UserRole


class Principal(msgspec.Struct, frozen=True):
    """Derived from a verified access token (``sub``, ``role`` and ``ver`` claims).

    ``token_version`` is the user's token version when the token was issued (0 for tokens
    without the claim); authentication refuses it once the user's version has moved on."""

    user_id: uuid.UUID
    role: UserRole
    token_version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN
