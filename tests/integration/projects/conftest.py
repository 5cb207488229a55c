"""A team project for the project tests: an owner, a maintainer, a member, a viewer, and a
stranger who belongs to none of it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.integration.http_support import ApiUser, join_project, register_and_login
from tests.integration.ops.support import register_admin


@dataclass
class Team:
    project_id: str
    owner: ApiUser
    maintainer: ApiUser
    member: ApiUser
    viewer: ApiUser
    stranger: ApiUser

    def by_role(self, role: str) -> ApiUser:
        return {
            "owner": self.owner,
            "maintainer": self.maintainer,
            "member": self.member,
            "viewer": self.viewer,
            "stranger": self.stranger,
        }[role]


async def make_team(client: httpx.AsyncClient, name: str = "Team") -> Team:
    owner = await register_and_login(client, "Owner")
    project = await client.post("/projects", json={"name": name}, headers=owner.headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    people = {}
    for role in ("maintainer", "member", "viewer"):
        user = await register_and_login(client, role.title())
        await join_project(client, project_id, owner.headers, user.email, user.headers, role)
        people[role] = user
    stranger = await register_and_login(client, "Stranger")
    return Team(project_id, owner, stranger=stranger, **people)


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await make_team(client)


@pytest.fixture
async def admin(client: httpx.AsyncClient, session_factory: object) -> ApiUser:
    return await register_admin(client, session_factory)
