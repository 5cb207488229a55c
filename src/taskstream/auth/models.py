"""Users, their refresh-token sessions and password resets."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from taskstream.db import Base, created_at_column, pg_enum
from taskstream.enums import UserRole


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Kept as typed; unique ignoring case through USERS_EMAIL_LOWER below.
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[UserRole] = mapped_column(
        pg_enum(UserRole, "user_role"),
        server_default=UserRole.MEMBER.value,
    )
    created_at: Mapped[datetime] = created_at_column()
    # Set when an administrator deactivates the account (cleared on reactivation): every
    # "active user" query filters on it, so a deactivated user cannot log in, refresh, be
    # added to a project or receive notifications.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Access tokens carry it (claim ``ver``); raising it ends every access token issued before
    # (password change or reset, deactivation) within the user-status cache window.
    token_version: Mapped[int] = mapped_column(Integer, server_default="0")


# One account per address whatever its case, enforced by the database (a check before the
# insert cannot see a concurrent registration); lookups compare lower(email) to use it.
USERS_EMAIL_LOWER = Index("uq_users_email_lower", func.lower(User.email), unique=True)


class RefreshSession(Base):
    """One refresh token. Rotation chains tokens in a family; reuse revokes the family.

    ``authenticated_at`` is the password login that started the family (copied along the
    chain): the family's absolute lifetime counts from it. ``successor_sealed`` is the pair
    this token's rotation issued, encrypted with a key derived from this token itself (see
    ``auth.tokens.seal_successor``), so that only a holder of the token can read it back
    during the reuse grace window; it is cleared once the window has passed.
    """

    __tablename__ = "refresh_sessions"
    __table_args__ = (Index(None, "family_id"), Index(None, "user_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    authenticated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    successor_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(Base):
    """One password-reset request. The emailed token is ``<id>.<HMAC(key, id)>``
    (``auth.reset_tokens``): the row holds no secret, and neither does the
    ``user.password_reset_requested`` event, which carries only the id. ``used_at`` makes
    the token single-use."""

    __tablename__ = "password_resets"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
