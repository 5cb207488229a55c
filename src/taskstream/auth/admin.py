"""Administration of accounts: list, deactivate, reactivate. Admins only (403 for anyone
else, as on every admin route). No HTTP types here."""

from __future__ import annotations

import base64
import binascii
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth.models import User
from taskstream.auth.repository import (
    PasswordResetRepository,
    RefreshSessionRepository,
    UserRepository,
)
from taskstream.auth.schemas import AdminUser, AdminUserPage
from taskstream.auth.user_status import UserStatusCache
from taskstream.errors import (
    ConflictError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)
from taskstream.principal import Principal


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ForbiddenError("Only administrators manage accounts")


def admin_view(user: User) -> AdminUser:
    return AdminUser(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        created_at=user.created_at,
        deactivated_at=user.deleted_at,
    )


def _encode_cursor(email: str) -> str:
    return base64.urlsafe_b64encode(email.lower().encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    """The last email of the previous page; 422 for anything this route did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValidationFailedError([FieldError("cursor", "invalid cursor")]) from exc
    if not after or "\x00" in after:  # PostgreSQL text cannot hold NUL
        raise ValidationFailedError([FieldError("cursor", "invalid cursor")])
    return after


async def list_users(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    email_prefix: str | None,
) -> AdminUserPage:
    """Every account, deactivated ones too, by email; ``email`` filters by prefix (any case)."""
    _require_admin(principal)
    after = _decode_cursor(cursor) if cursor else None
    rows = await UserRepository.from_session(session).page(
        limit + 1, after_email=after, email_prefix=email_prefix
    )
    items = rows[:limit]
    next_cursor = _encode_cursor(items[-1].email) if len(rows) > limit else None
    return AdminUserPage(items=[admin_view(u) for u in items], next_cursor=next_cursor)


async def set_active(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    active: bool,
    statuses: UserStatusCache | None,
) -> AdminUser:
    """Deactivate or reactivate an account (idempotent: the current state when it is already
    so). Deactivation revokes every refresh session and pending reset and raises the token
    version; the user's access tokens are refused within the user-status cache window (10 s;
    at once on the process that did it). Administrators cannot deactivate themselves."""
    _require_admin(principal)
    if not active and user_id == principal.user_id:
        raise ConflictError("Administrators cannot deactivate their own account")
    users = UserRepository.from_session(session)
    changed = await users.set_deactivated(user_id, deactivated=not active)
    if changed is None:
        current = await users.get_any(user_id)
        if current is None:
            raise NotFoundError("User not found")
        return admin_view(current)
    if not active:
        await RefreshSessionRepository.from_session(session).revoke_all_for_user(user_id)
        await PasswordResetRepository.from_session(session).void_for_user(user_id)
    view = admin_view(changed)
    await session.commit()
    if statuses is not None:
        statuses.forget(user_id)
    return view
