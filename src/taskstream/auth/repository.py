"""All SQL for users, refresh sessions and password resets."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import aliased

from taskstream.auth.models import PasswordReset, RefreshSession, User
from taskstream.db import Repository
from taskstream.enums import UserRole
from taskstream.projects.models import Project, ProjectMember


class UserRepository(Repository):
    async def get_active(self, user_id: uuid.UUID) -> User | None:
        stmt = select(User).where(User.id == user_id, User.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_active_by_email(self, email: str) -> User | None:
        stmt = select(User).where(
            func.lower(User.email) == email.lower(), User.deleted_at.is_(None)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def email_taken(self, email: str) -> bool:
        stmt = select(User.id).where(func.lower(User.email) == email.lower())
        return (await self.session.execute(stmt)).first() is not None

    async def active_role(self, user_id: uuid.UUID) -> UserRole | None:
        """The role of a user that exists and is not deleted; None otherwise."""
        stmt = select(User.role).where(User.id == user_id, User.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def active_status(self, user_id: uuid.UUID) -> tuple[UserRole, int] | None:
        """Role and token version of an active user; None if deactivated or unknown."""
        stmt = select(User.role, User.token_version).where(
            User.id == user_id, User.deleted_at.is_(None)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return (row.role, row.token_version) if row is not None else None

    async def lock_active(self, user_id: uuid.UUID) -> User | None:
        """The active user, read fresh and held FOR SHARE until the transaction ends: a
        password change, reset or deactivation (which update the row) waits for a session
        being issued now, and a session issued after one of them sees its effect."""
        stmt = (
            select(User)
            .where(User.id == user_id, User.deleted_at.is_(None))
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_any(self, user_id: uuid.UUID) -> User | None:
        """The user whether active or deactivated."""
        return await self.session.get(User, user_id, populate_existing=True)

    async def find_visible_by_email(
        self, email: str, caller_id: uuid.UUID, *, everyone: bool
    ) -> User | None:
        """The active user with ``email`` (any case) if ``everyone`` or if they share a live
        (not soft-deleted) project with ``caller_id``; None otherwise, whether or not the
        address exists."""
        stmt = select(User).where(
            func.lower(User.email) == email.lower(), User.deleted_at.is_(None)
        )
        if not everyone:
            mine, theirs = aliased(ProjectMember), aliased(ProjectMember)
            shared = exists().where(
                and_(
                    mine.user_id == caller_id,
                    theirs.project_id == mine.project_id,
                    theirs.user_id == User.id,
                    Project.id == mine.project_id,
                    Project.deleted_at.is_(None),
                )
            )
            stmt = stmt.where(shared)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, user: User) -> None:
        self.session.add(user)
        await self.session.flush()

    async def set_role(self, user_id: uuid.UUID, role: UserRole) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(role=role))

    async def set_name(self, user_id: uuid.UUID, name: str) -> User | None:
        stmt = (
            update(User)
            .where(User.id == user_id, User.deleted_at.is_(None))
            .values(name=name)
            .returning(User)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_password(
        self, user_id: uuid.UUID, password_hash: str, *, replacing: str | None = None
    ) -> int | None:
        """Store a new password hash and raise the token version (ending every access token
        issued before); returns the new version. With ``replacing``, only if the stored hash
        is still that one (None otherwise: changed concurrently, or deactivated)."""
        conditions = [User.id == user_id, User.deleted_at.is_(None)]
        if replacing is not None:
            conditions.append(User.password_hash == replacing)
        stmt = (
            update(User)
            .where(*conditions)
            .values(password_hash=password_hash, token_version=User.token_version + 1)
            .returning(User.token_version)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_deactivated(self, user_id: uuid.UUID, deactivated: bool) -> User | None:
        """Deactivate (raising the token version, so that a later reactivation does not revive
        old access tokens) or reactivate; None when the user is already in that state."""
        if deactivated:
            stmt = (
                update(User)
                .where(User.id == user_id, User.deleted_at.is_(None))
                .values(deleted_at=func.now(), token_version=User.token_version + 1)
            )
        else:
            stmt = (
                update(User)
                .where(User.id == user_id, User.deleted_at.is_not(None))
                .values(deleted_at=None)
            )
        returning = stmt.returning(User).execution_options(populate_existing=True)
        return (await self.session.execute(returning)).scalar_one_or_none()

    async def page(
        self, limit: int, *, after_email: str | None, email_prefix: str | None
    ) -> list[User]:
        """Users (deactivated too) ordered by lower-case email, which is unique."""
        stmt = select(User).order_by(func.lower(User.email)).limit(limit)
        if after_email is not None:
            stmt = stmt.where(func.lower(User.email) > after_email)
        if email_prefix:
            escaped = (
                email_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            stmt = stmt.where(func.lower(User.email).like(escaped + "%", escape="\\"))
        return list((await self.session.execute(stmt)).scalars())


class PasswordResetRepository(Repository):
    async def add(self, user_id: uuid.UUID, expires_at: datetime) -> uuid.UUID:
        reset = PasswordReset(id=uuid.uuid4(), user_id=user_id, expires_at=expires_at)
        self.session.add(reset)
        await self.session.flush()
        return reset.id

    async def claim(self, reset_id: uuid.UUID) -> uuid.UUID | None:
        """Use an unused, unexpired reset; its user id, or None. Of concurrent claims one
        wins: the others wait for its transaction and then find the reset used (or, if it
        rolled back, claim it themselves)."""
        stmt = (
            update(PasswordReset)
            .where(
                PasswordReset.id == reset_id,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(PasswordReset.user_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def void_for_user(self, user_id: uuid.UUID) -> None:
        """Use up every pending reset of the user (the password changed another way)."""
        stmt = (
            update(PasswordReset)
            .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
            .values(used_at=func.now())
        )
        await self.session.execute(stmt)


class RefreshSessionRepository(Repository):
    async def add(
        self,
        user_id: uuid.UUID,
        family_id: uuid.UUID,
        token_hash: str,
        expires_at: datetime,
        authenticated_at: datetime,
    ) -> None:
        self.session.add(
            RefreshSession(
                user_id=user_id,
                family_id=family_id,
                token_hash=token_hash,
                expires_at=expires_at,
                authenticated_at=authenticated_at,
            )
        )
        await self.session.flush()

    async def claim(self, token_hash: str, max_age: timedelta) -> RefreshSession | None:
        """Mark an unused, unrevoked, unexpired token of a family younger than ``max_age``
        used, atomically; None if it is not. A concurrent claim of the same token waits for
        this transaction and then finds the token used."""
        stmt = (
            update(RefreshSession)
            .where(
                RefreshSession.token_hash == token_hash,
                RefreshSession.used_at.is_(None),
                RefreshSession.revoked_at.is_(None),
                RefreshSession.expires_at > func.now(),
                RefreshSession.authenticated_at > func.now() - max_age,
            )
            .values(used_at=func.now())
            .returning(RefreshSession)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def keep_successor(self, session_id: uuid.UUID, sealed: bytes) -> None:
        stmt = (
            update(RefreshSession)
            .where(RefreshSession.id == session_id)
            .values(successor_sealed=sealed)
        )
        await self.session.execute(stmt)

    async def recent_successor(
        self, token_hash: str, grace: timedelta, max_age: timedelta
    ) -> bytes | None:
        """The sealed pair issued by this token's rotation, if that was less than ``grace``
        ago and the family is neither revoked nor past ``max_age``."""
        stmt = select(RefreshSession.successor_sealed).where(
            RefreshSession.token_hash == token_hash,
            RefreshSession.revoked_at.is_(None),
            RefreshSession.used_at > func.now() - grace,
            RefreshSession.authenticated_at > func.now() - max_age,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def forget_old_successors(self, family_id: uuid.UUID, grace: timedelta) -> None:
        """Drop the sealed pairs of the family that can no longer be handed out."""
        stmt = (
            update(RefreshSession)
            .where(
                RefreshSession.family_id == family_id,
                RefreshSession.successor_sealed.is_not(None),
                RefreshSession.used_at <= func.now() - grace,
            )
            .values(successor_sealed=None)
        )
        await self.session.execute(stmt)

    async def owner_of(self, token_hash: str) -> uuid.UUID | None:
        stmt = select(RefreshSession.user_id).where(RefreshSession.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_hash(self, token_hash: str) -> RefreshSession | None:
        stmt = select(RefreshSession).where(RefreshSession.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        stmt = (
            update(RefreshSession)
            .where(RefreshSession.family_id == family_id, RefreshSession.revoked_at.is_(None))
            .values(revoked_at=func.now(), successor_sealed=None)
        )
        await self.session.execute(stmt)

    async def revoke_all_for_user(self, user_id: uuid.UUID) -> None:
        stmt = (
            update(RefreshSession)
            .where(RefreshSession.user_id == user_id, RefreshSession.revoked_at.is_(None))
            .values(revoked_at=func.now(), successor_sealed=None)
        )
        await self.session.execute(stmt)
