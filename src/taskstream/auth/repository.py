"""All SQL for users and refresh sessions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from taskstream.auth.models import RefreshSession, User
from taskstream.db import Repository
from taskstream.enums import UserRole


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

    async def add(self, user: User) -> None:
        self.session.add(user)
        await self.session.flush()

    async def set_role(self, user_id: uuid.UUID, role: UserRole) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(role=role))


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
