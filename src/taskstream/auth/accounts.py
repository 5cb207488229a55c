"""The caller's account: finding people by email, the profile, the password and its reset by
email. No HTTP types here."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.login_guard import LoginGuard
from taskstream.auth.models import User
from taskstream.auth.passwords import hash_password, verify_password
from taskstream.auth.repository import (
    PasswordResetRepository,
    RefreshSessionRepository,
    UserRepository,
)
from taskstream.auth.reset_tokens import reset_id_of
from taskstream.auth.service import RegisteredUser, TokenPair, issue_pair, password_problems
from taskstream.auth.tokens import TokenCodec
from taskstream.auth.user_status import UserStatusCache
from taskstream.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from taskstream.messages import DomainEvent
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.principal import Principal
from taskstream.projects.repository import ProjectRepository
from taskstream.settings import AuthSettings, RateLimitSettings

log = logging.getLogger(__name__)

PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an event type
RESET_REQUESTED = "user.password_reset_requested"
BAD_RESET_TOKEN = "is invalid, expired or already used"  # noqa: S105 - a message


async def find_by_email(session: AsyncSession, principal: Principal, email: str) -> list[User]:
    """The active user with exactly this address (any case), if the caller shares a project
    with them or is an admin: a list of one, else empty. A stranger's address and an unknown
    one give the same empty list, so the route cannot be used to test addresses."""
    found = await UserRepository.from_session(session).find_visible_by_email(
        email.strip(), principal.user_id, everyone=principal.is_admin
    )
    return [found] if found is not None else []


async def rename_me(session: AsyncSession, principal: Principal, name: str) -> RegisteredUser:
    """Set the caller's display name (surrounding blanks trimmed)."""
    user = await UserRepository.from_session(session).set_name(principal.user_id, name.strip())
    if user is None:
        raise NotFoundError("User not found")
    project_id = await ProjectRepository.from_session(session).personal_project_id(user.id)
    await session.commit()
    return RegisteredUser(user, project_id)


async def change_password(
    session: AsyncSession,
    codec: TokenCodec,
    principal: Principal,
    current_password: str,
    new_password: str,
    *,
    guard: LoginGuard | None,
    address: str,
    statuses: UserStatusCache | None,
    trace_id: str | None = None,
) -> TokenPair:
    """Replace the caller's password, given the current one, and end every other session.

    A wrong current password is a 422 and counts as a failed login for the account (the login
    guard then answers 429 like login does). On success every refresh session of the user is
    revoked and the token version raised, so every access token issued before stops working;
    the caller continues with the new pair returned, a new session. ``user.password_changed``
    goes to the outbox (an email to the user)."""
    users = UserRepository.from_session(session)
    user = await users.get_active(principal.user_id)
    if user is None:
        raise NotFoundError("User not found")
    if guard is not None:
        await guard.check(address, user.email)
    if not await verify_password(user.password_hash, current_password):
        if guard is not None:
            await guard.record_failure(address, user.email)
        raise ValidationFailedError([FieldError("currentPassword", "is incorrect")])
    if guard is not None:
        await guard.record_success(address, user.email)
    problems = password_problems(new_password, user.email, user.name)
    if new_password == current_password:
        problems.append("must differ from the current password")
    if problems:
        raise ValidationFailedError([FieldError("newPassword", p) for p in problems])
    version = await users.set_password(
        user.id, await hash_password(new_password), replacing=user.password_hash
    )
    if version is None:
        raise ConflictError("The password was changed at the same time; try again")
    await _end_sessions_and_notify(session, user.id, version, "change", trace_id)
    fresh = await users.lock_active(user.id)  # read back at its new token version
    if fresh is None:  # pragma: no cover - the update above matched an active row
        raise NotFoundError("User not found")
    pair = await issue_pair(session, codec, fresh, uuid.uuid4(), datetime.now(UTC))
    await session.commit()
    if statuses is not None:
        statuses.forget(user.id)
    return pair


async def _end_sessions_and_notify(
    session: AsyncSession, user_id: uuid.UUID, version: int, how: str, trace_id: str | None
) -> None:
    """Revoke every refresh session and pending reset of the user, and write
    ``user.password_changed``, in the caller's transaction."""
    await RefreshSessionRepository.from_session(session).revoke_all_for_user(user_id)
    await PasswordResetRepository.from_session(session).void_for_user(user_id)
    await OutboxRepository.from_session(session).add(
        [
            DomainEvent(
                event_id=derived_event_id(user_id, PASSWORD_CHANGED, str(version)),
                type=PASSWORD_CHANGED,
                occurred_at=datetime.now(UTC),
                aggregate_id=user_id,
                actor_id=user_id,
                trace_id=trace_id,
                data={"userId": str(user_id), "via": how},
            )
        ]
    )


async def request_password_reset(
    session_factory: async_sessionmaker[AsyncSession],
    email: str,
    *,
    auth: AuthSettings,
    limits: RateLimitSettings,
    guard: LoginGuard | None,
    trace_id: str | None = None,
) -> None:
    """Start a reset for the account of ``email``, if there is an active one and the address
    has not had too many requests: a ``password_resets`` row expiring after
    ``auth.password_reset_ttl_s`` and ``user.password_reset_requested`` (its id only) in the
    outbox, from which the email worker renders the link. Run after the 202 has been sent,
    so an unknown address answers exactly as fast as a known one. Never raises."""
    try:
        email = email.strip()
        if guard is not None and limits.enabled:
            allowed = await guard.reset_allowed(
                email, auth.password_reset_per_address, auth.password_reset_window_s
            )
            if not allowed:
                return
        async with session_factory() as session:
            user = await UserRepository.from_session(session).get_active_by_email(email)
            if user is None:
                return
            expires_at = datetime.now(UTC) + timedelta(seconds=auth.password_reset_ttl_s)
            reset_id = await PasswordResetRepository.from_session(session).add(user.id, expires_at)
            await OutboxRepository.from_session(session).add(
                [
                    DomainEvent(
                        event_id=derived_event_id(reset_id, RESET_REQUESTED),
                        type=RESET_REQUESTED,
                        occurred_at=datetime.now(UTC),
                        aggregate_id=user.id,
                        trace_id=trace_id,
                        data={"userId": str(user.id), "resetId": str(reset_id)},
                    )
                ]
            )
            await session.commit()
    except Exception:  # after the response: nobody to answer, so log it
        log.exception("password reset request failed")


async def confirm_password_reset(
    session: AsyncSession,
    auth: AuthSettings,
    token: str,
    new_password: str,
    *,
    statuses: UserStatusCache | None,
    trace_id: str | None = None,
) -> None:
    """Set a new password with a reset token: the token must be genuine, unused and
    unexpired; it is used up here (of concurrent confirmations exactly one succeeds). Every
    session of the user ends. A weak password is refused without using up the token."""
    reset_id = reset_id_of(auth, token)
    resets = PasswordResetRepository.from_session(session)
    user_id = await resets.claim(reset_id) if reset_id is not None else None
    users = UserRepository.from_session(session)
    user = await users.get_active(user_id) if user_id is not None else None
    if user is None:
        raise ValidationFailedError([FieldError("token", BAD_RESET_TOKEN)])
    problems = password_problems(new_password, user.email, user.name)
    if problems:
        await session.rollback()  # the token stays usable
        raise ValidationFailedError([FieldError("newPassword", p) for p in problems])
    version = await users.set_password(user.id, await hash_password(new_password))
    if version is None:  # pragma: no cover - get_active above saw an active row
        raise ValidationFailedError([FieldError("token", BAD_RESET_TOKEN)])
    await _end_sessions_and_notify(session, user.id, version, "reset", trace_id)
    await session.commit()
    if statuses is not None:
        statuses.forget(user.id)
