"""Registration, login, refresh-token rotation and logout. No HTTP types here."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth.models import User
from taskstream.auth.passwords import hash_password, verify_password
from taskstream.auth.repository import RefreshSessionRepository, UserRepository
from taskstream.auth.tokens import (
    TokenCodec,
    hash_refresh_token,
    new_refresh_token,
    open_successor,
    seal_successor,
)
from taskstream.enums import UserRole
from taskstream.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
from taskstream.messages import DomainEvent
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import create_project

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class RegisteredUser:
    user: User
    personal_project_id: uuid.UUID | None


def password_problems(password: str, email: str, name: str) -> list[str]:
    """Why a password is too weak (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.isalpha() or password.isdigit():
        problems.append("must mix letters with digits or symbols")
    if len(set(password)) < 5:
        problems.append("must not repeat the same few characters")
    lowered = password.lower()
    if lowered in {email.lower(), email.split("@", maxsplit=1)[0].lower(), name.lower()}:
        problems.append("must not equal your email or name")
    return problems


async def register_user(
    session: AsyncSession,
    name: str,
    email: str,
    password: str,
    trace_id: str | None = None,
    *,
    role: UserRole = UserRole.MEMBER,
) -> RegisteredUser:
    """Create a member with a personal project; ``user.created`` and ``project.created`` go
    to the outbox in the same transaction. 409 on a taken email, 422 on weak input."""
    email = email.strip()
    errors = []
    if not EMAIL_PATTERN.match(email):
        errors.append(FieldError("email", "is not a valid email address"))
    if not name.strip():
        errors.append(FieldError("name", "must not be blank"))
    errors += [FieldError("password", p) for p in password_problems(password, email, name)]
    if errors:
        raise ValidationFailedError(errors)
    if await UserRepository.from_session(session).email_taken(email):
        raise ConflictError("This email is already registered")
    registered = await _create_member(
        session, name, email, await hash_password(password), trace_id, role=role
    )
    await session.commit()
    return registered


async def provision_member(
    session: AsyncSession, name: str, email: str, password_hash: str
) -> RegisteredUser:
    """The active member with ``email``, created with its personal project (and the same
    events as a registration) when absent, in the caller's transaction. For operator tools
    (load-test seeding) that create many users without the rate-limited front door; the
    password hash is computed once by the caller and may be shared."""
    existing = await UserRepository.from_session(session).get_active_by_email(email)
    if existing is not None:
        project_id = await ProjectRepository.from_session(session).personal_project_id(existing.id)
        return RegisteredUser(existing, project_id)
    return await _create_member(session, name, email, password_hash, None)


async def _create_member(
    session: AsyncSession,
    name: str,
    email: str,
    password_hash: str,
    trace_id: str | None,
    *,
    role: UserRole = UserRole.MEMBER,
) -> RegisteredUser:
    users = UserRepository.from_session(session)
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=name.strip(),
        password_hash=password_hash,
        role=role,
    )
    try:
        await users.add(user)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise ConflictError("This email is already registered") from exc
    await OutboxRepository.from_session(session).add(
        [
            DomainEvent(
                event_id=derived_event_id(user.id, "user.created"),
                type="user.created",
                occurred_at=datetime.now(UTC),
                aggregate_id=user.id,
                actor_id=user.id,
                trace_id=trace_id,
                data={"userId": str(user.id), "email": user.email, "name": user.name},
            )
        ]
    )
    project = await create_project(
        session, user.id, f"{user.name}'s tasks", is_personal=True, trace_id=trace_id
    )
    return RegisteredUser(user, project.id)


AdminOutcome = Literal["created", "promoted", "unchanged"]


async def create_admin(
    session: AsyncSession, email: str, name: str, password: str | None
) -> AdminOutcome:
    """Make ``email`` an administrator: a new account (with ``password``, held to the same
    rules as a registration) or, if the address already has one, that account promoted; its
    password is left as it is. Idempotent: a second run answers ``unchanged``. A deactivated
    account of that address is refused (409), never silently reactivated."""
    users = UserRepository.from_session(session)
    existing = await users.get_active_by_email(email.strip())
    if existing is not None:
        if existing.role is UserRole.ADMIN:
            return "unchanged"
        await users.set_role(existing.id, UserRole.ADMIN)
        await session.commit()
        return "promoted"
    if await users.email_taken(email.strip()):
        raise ConflictError(
            f"The account of {email.strip()} is deactivated: an administrator reactivates it "
            "(POST /admin/users/{id}/reactivate), then run this again"
        )
    if not password:
        raise ValidationFailedError([FieldError("password", "is required for a new account")])
    await register_user(session, name, email, password, role=UserRole.ADMIN)
    return "created"


async def issue_pair(
    session: AsyncSession,
    codec: TokenCodec,
    user: User,
    family_id: uuid.UUID,
    authenticated_at: datetime,
) -> TokenPair:
    """An access token at the user's current token version and a refresh token of
    ``family_id``, in the caller's transaction."""
    access = codec.issue_access(user.id, user.role, user.token_version)
    raw, token_hash = new_refresh_token()
    expires_at = datetime.now(UTC) + timedelta(seconds=codec.settings.refresh_token_ttl_s)
    await RefreshSessionRepository.from_session(session).add(
        user.id, family_id, token_hash, expires_at, authenticated_at
    )
    return TokenPair(access.token, raw, access.expires_in)


async def login(session: AsyncSession, codec: TokenCodec, email: str, password: str) -> TokenPair:
    """Tokens for valid credentials; one vague 401 for an unknown email or a wrong password."""
    users = UserRepository.from_session(session)
    user = await users.get_active_by_email(email.strip())
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise UnauthorizedError("Invalid email or password")
    verified_hash = user.password_hash
    # The password may have changed (or the account been deactivated) while it was verified.
    user = await users.lock_active(user.id)
    if user is None or user.password_hash != verified_hash:
        raise UnauthorizedError("Invalid email or password")
    pair = await issue_pair(
        session, codec, user, family_id=uuid.uuid4(), authenticated_at=datetime.now(UTC)
    )
    await session.commit()
    return pair


async def start_session(session: AsyncSession, codec: TokenCodec, user: User) -> TokenPair:
    """A new session (access and refresh token) for an active user, as a login would start
    it but without the password: for operator tools that provision users (load-test seeding,
    ``taskstream loadtest token``), never reachable over HTTP."""
    pair = await issue_pair(
        session, codec, user, family_id=uuid.uuid4(), authenticated_at=datetime.now(UTC)
    )
    await session.commit()
    return pair


async def refresh(session: AsyncSession, codec: TokenCodec, refresh_token: str) -> TokenPair:
    """Rotate a refresh token.

    The same token presented again within ``auth.refresh_reuse_grace_s`` of its rotation (two
    tabs refreshing at once, a client retrying a lost answer) gets the very pair that rotation
    issued. Presented later, it was stolen or replayed: its whole family is revoked, so both
    holders must log in again. A family ends ``auth.refresh_session_max_age_s`` after the
    login that started it, however often it is rotated.
    """
    settings = codec.settings
    grace = timedelta(seconds=settings.refresh_reuse_grace_s)
    max_age = timedelta(seconds=settings.refresh_session_max_age_s)
    sessions = RefreshSessionRepository.from_session(session)
    users = UserRepository.from_session(session)
    token_hash = hash_refresh_token(refresh_token)
    # The user row first, as a password change or a deactivation takes it: either the new
    # token exists before their revocation runs (and is revoked), or this claim finds the
    # token revoked.
    owner = await sessions.owner_of(token_hash)
    if owner is not None:
        await users.lock_active(owner)
    claimed = await sessions.claim(token_hash, max_age)
    if claimed is None:
        sealed = await sessions.recent_successor(token_hash, grace, max_age)
        opened = open_successor(refresh_token, sealed) if sealed is not None else None
        if opened is not None:
            return msgspec.json.decode(opened, type=TokenPair)
        known = await sessions.get_by_hash(token_hash)
        if known is not None and known.used_at is not None:
            await sessions.revoke_family(known.family_id)
            await session.commit()
            raise UnauthorizedError("Refresh token reuse detected; the session was revoked")
        raise UnauthorizedError("The refresh token is invalid or expired")
    user = await users.get_active(claimed.user_id)
    if user is None:
        await sessions.revoke_family(claimed.family_id)
        await session.commit()
        raise UnauthorizedError("The user no longer exists or is deactivated")
    pair = await issue_pair(
        session, codec, user, claimed.family_id, authenticated_at=claimed.authenticated_at
    )
    await sessions.keep_successor(
        claimed.id, seal_successor(refresh_token, msgspec.json.encode(pair))
    )
    await sessions.forget_old_successors(claimed.family_id, grace)
    await session.commit()
    return pair


async def logout(session: AsyncSession, user_id: uuid.UUID, refresh_token: str | None) -> None:
    """Revoke the family of the given refresh token, or every session of the user.
    Access tokens stay valid until they expire (they are short-lived)."""
    sessions = RefreshSessionRepository.from_session(session)
    if refresh_token is None:
        await sessions.revoke_all_for_user(user_id)
    else:
        known = await sessions.get_by_hash(hash_refresh_token(refresh_token))
        if known is not None and known.user_id == user_id:
            await sessions.revoke_family(known.family_id)
    await session.commit()


async def get_me(session: AsyncSession, user_id: uuid.UUID) -> RegisteredUser:
    """The caller's profile and personal project."""
    user = await UserRepository.from_session(session).get_active(user_id)
    if user is None:
        raise NotFoundError("User not found")
    project_id = await ProjectRepository.from_session(session).personal_project_id(user_id)
    return RegisteredUser(user, project_id)
