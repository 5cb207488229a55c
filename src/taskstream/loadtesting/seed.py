"""Provision load-test users, team projects and memberships through the services (not the
rate-limited registration route), idempotently per run id: seeding the same run again finds
what exists by its natural key (the email; the owner and project name; the membership) and
creates only what is missing. Every user gets a fresh session (access and refresh token)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.passwords import hash_password
from taskstream.auth.service import provision_member, start_session
from taskstream.auth.tokens import TokenCodec
from taskstream.enums import ProjectRole
from taskstream.loadtesting.run_files import Credentials, SeededProject, SeededUser
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import add_member_directly, create_project

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
EMAIL_DOMAIN = "loadtest.invalid"  # reserved TLD: mail to seeded users can never leave


@dataclass(frozen=True, slots=True)
class SeedPlan:
    run_id: str
    users: int
    projects: int
    members_per_project: int = 3

    def __post_init__(self) -> None:
        if not RUN_ID_PATTERN.match(self.run_id):
            raise ValueError("a run id is 1-40 letters, digits, '-' or '_'")
        if self.users < 1 or self.projects < 0 or self.members_per_project < 0:
            raise ValueError("users >= 1, projects >= 0, members per project >= 0")


def seeded_email(run_id: str, index: int) -> str:
    """The natural key of the ``index``-th user of a run."""
    return f"loadtest-{run_id.lower()}-{index:05d}@{EMAIL_DOMAIN}"


def seed_password(secret: str, run_id: str) -> str:
    """The run's password: the same on every seeding of the run (so re-seeding never leaves
    users whose password nobody knows), unguessable without the deployment's secret."""
    digest = hmac.new(secret.encode(), f"loadtest:{run_id}".encode(), hashlib.sha256)
    return f"lt-{digest.hexdigest()[:24]}"


def team_project_name(run_id: str, index: int) -> str:
    return f"loadtest {run_id} team {index}"


async def seed_run(
    sessions: async_sessionmaker[AsyncSession],
    codec: TokenCodec,
    plan: SeedPlan,
    password: str,
    progress: Callable[[int], None] = lambda _n: None,
) -> Credentials:
    """Create (or find) ``plan.users`` users, each with a personal project and a new session,
    and ``plan.projects`` team projects owned round-robin by them, each with the next
    ``plan.members_per_project`` users as members. ``progress`` is called with the number
    of items done after each user and each project."""
    password_hash = await hash_password(password)  # once: argon2 is slow by design
    users: list[SeededUser] = []
    for index in range(plan.users):
        async with sessions() as session:
            name = f"Load tester {index}"
            member = await provision_member(
                session, name, seeded_email(plan.run_id, index), password_hash
            )
            pair = await start_session(session, codec, member.user)  # commits both
        users.append(
            SeededUser(
                id=member.user.id,
                email=member.user.email,
                name=member.user.name,
                personal_project_id=member.personal_project_id,
                access_token=pair.access_token,
                refresh_token=pair.refresh_token,
            )
        )
        progress(1)
    projects: list[SeededProject] = []
    for index in range(plan.projects):
        async with sessions() as session:
            projects.append(await _seed_project(session, plan, index, users))
        progress(1)
    for project in projects:
        for user in users:
            if user.id == project.owner_id or user.id in project.member_ids:
                user.project_ids.append(project.id)
    return Credentials(run_id=plan.run_id, password=password, users=users, projects=projects)


async def _seed_project(
    session: AsyncSession, plan: SeedPlan, index: int, users: list[SeededUser]
) -> SeededProject:
    owner = users[index % len(users)]
    name = team_project_name(plan.run_id, index)
    project = await ProjectRepository.from_session(session).owned_named(owner.id, name)
    if project is None:
        project = await create_project(session, owner.id, name, "load-test team project")
    member_ids = []
    for offset in range(1, plan.members_per_project + 1):
        user = users[(index + offset) % len(users)]
        if user.id == owner.id or user.id in member_ids:
            continue
        # seeding decides membership itself (no invitation); a member since an earlier seeding
        # is left as is
        await add_member_directly(
            session,
            project_id=project.id,
            user_id=user.id,
            role=ProjectRole.MEMBER,
            actor_id=owner.id,
        )
        member_ids.append(user.id)
    await session.commit()
    return SeededProject(id=project.id, name=name, owner_id=owner.id, member_ids=member_ids)
