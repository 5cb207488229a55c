"""Invitations by email: no enumeration, one pending per address, answered once, expiry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from tests.integration.http_support import PASSWORD, ApiUser, register_and_login
from tests.integration.projects.conftest import Team

INVITATION_KEYS = {"id", "projectId", "email", "role", "invitedBy", "createdAt", "expiresAt"}


async def invite(client, team_or_id, headers, email: str, role: str = "member") -> httpx.Response:
    project_id = team_or_id.project_id if isinstance(team_or_id, Team) else team_or_id
    return await client.post(
        f"/projects/{project_id}/invitations", json={"email": email, "role": role}, headers=headers
    )


async def mine(client, user: ApiUser) -> list[dict]:
    response = await client.get("/users/me/invitations", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def outbox_payloads(session_factory, project_id: str, event_type: str) -> list[bytes]:
    async with session_factory() as session:
        rows = await session.execute(
            text("SELECT payload FROM outbox WHERE aggregate_id = :p AND event_type = :t"),
            {"p": project_id, "t": event_type},
        )
        return [bytes(p) for p in rows.scalars().all()]


async def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(
    client, team: Team, alice: ApiUser, session_factory
):
    known = await invite(client, team, team.owner.headers, alice.email)
    unknown = await invite(client, team, team.owner.headers, f"nobody-{uuid.uuid4().hex}@x.org")
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json()) == INVITATION_KEYS
    assert known.headers["content-type"] == unknown.headers["content-type"]
    # only the existing user is notified (an event naming them)
    invited = await outbox_payloads(session_factory, team.project_id, "project.member_invited")
    assert sum(alice.id.encode() in p for p in invited) == 1
    assert not any(unknown.json()["id"].encode() in p for p in invited)
    assert sum(known.json()["id"].encode() in p for p in invited) == 1
    assert [i["projectId"] for i in await mine(client, alice)] == [team.project_id]


@pytest.mark.parametrize(
    ("role", "granting", "expected"),
    [
        ("owner", "owner", 201),
        ("owner", "maintainer", 201),
        ("maintainer", "member", 201),
        ("maintainer", "viewer", 201),
        ("maintainer", "maintainer", 403),
        ("maintainer", "owner", 403),
        ("member", "viewer", 403),
        ("viewer", "viewer", 403),
        ("stranger", "viewer", 404),
    ],
)
async def test_who_may_invite(client, team: Team, role, granting, expected):
    response = await invite(
        client, team, team.by_role(role).headers, f"x-{uuid.uuid4().hex}@x.org", granting
    )
    assert response.status_code == expected, response.text


async def test_an_admin_may_invite(client, team: Team, admin: ApiUser):
    response = await invite(client, team, admin.headers, f"x-{uuid.uuid4().hex}@x.org", "owner")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "member"},
        {"email": ""},
        {"email": "no-at-sign"},
        {"email": "@example.com"},
        {"email": "a b@example.com"},
        {"email": "a\x00@example.com"},
        {"email": "a" * 320 + "@example.com"},
        {"email": 42},
        {"email": "a@example.com", "role": "king"},
        {"email": "a@example.com", "role": 1},
        [],
    ],
)
async def test_invitation_bad_input(client, team: Team, body, session_factory):
    response = await client.post(
        f"/projects/{team.project_id}/invitations", json=body, headers=team.owner.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    async with session_factory() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM project_invitations WHERE project_id = :p"),
            {"p": team.project_id},
        )
    assert count == 3  # the team's own, all accepted


async def test_unknown_project_is_404(client, alice: ApiUser):
    response = await invite(client, str(uuid.uuid4()), alice.headers, "a@example.com")
    assert response.status_code == 404


async def test_listing_and_revoking_are_for_maintainers(client, team: Team, alice: ApiUser):
    created = await invite(client, team, team.maintainer.headers, alice.email.upper())
    assert created.json()["email"] == alice.email.lower()
    base = f"/projects/{team.project_id}/invitations"
    for role, expected in [
        ("owner", 200),
        ("maintainer", 200),
        ("member", 403),
        ("viewer", 403),
        ("stranger", 404),
    ]:
        listed = await client.get(base, headers=team.by_role(role).headers)
        assert listed.status_code == expected, (role, listed.text)
        if expected == 200:
            assert [i["id"] for i in listed.json()["items"]] == [created.json()["id"]]
    invitation = created.json()["id"]
    for role, expected in [("member", 403), ("viewer", 403), ("stranger", 404)]:
        response = await client.delete(f"{base}/{invitation}", headers=team.by_role(role).headers)
        assert response.status_code == expected
    assert len(await mine(client, alice)) == 1
    revoked = await client.delete(f"{base}/{invitation}", headers=team.maintainer.headers)
    assert revoked.status_code == 204
    again = await client.delete(f"{base}/{invitation}", headers=team.maintainer.headers)
    assert again.status_code == 404
    assert await mine(client, alice) == []
    late = await client.post(f"/invitations/{invitation}/accept", headers=alice.headers)
    assert late.status_code == 409
    assert (await client.get(base, headers=team.owner.headers)).json()["items"] == []
    unknown = await client.delete(f"{base}/{uuid.uuid4()}", headers=team.owner.headers)
    assert unknown.status_code == 404


async def test_project_invitations_page(client, team: Team):
    for index in range(5):
        assert (
            await invite(client, team, team.owner.headers, f"p{index}@x.org")
        ).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(
                f"/projects/{team.project_id}/invitations",
                params=params,
                headers=team.owner.headers,
            )
        ).json()
        seen += [i["email"] for i in page["items"]]
        if (cursor := page["nextCursor"]) is None:
            break
    assert seen == [f"p{index}@x.org" for index in range(5)]
    bad = await client.get(
        f"/projects/{team.project_id}/invitations",
        params={"cursor": "garbage"},
        headers=team.owner.headers,
    )
    assert bad.status_code == 422


async def test_accepting_makes_a_member_with_the_invited_role(client, team: Team, session_factory):
    invitee = await register_and_login(client, "Invitee")
    created = await invite(client, team, team.owner.headers, invitee.email, "maintainer")
    listed = await mine(client, invitee)
    assert [(i["id"], i["projectName"], i["role"]) for i in listed] == [
        (created.json()["id"], "Team", "maintainer")
    ]
    # someone else cannot answer it, an unknown id is 404
    assert (
        await client.post(
            f"/invitations/{created.json()['id']}/accept", headers=team.member.headers
        )
    ).status_code == 404
    assert (
        await client.post(f"/invitations/{uuid.uuid4()}/accept", headers=invitee.headers)
    ).status_code == 404
    accepted = await client.post(
        f"/invitations/{created.json()['id']}/accept", headers=invitee.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "projectId": team.project_id,
        "userId": invitee.id,
        "role": "maintainer",
    }
    project = await client.get(f"/projects/{team.project_id}", headers=invitee.headers)
    assert project.json()["role"] == "maintainer"
    again = await client.post(
        f"/invitations/{created.json()['id']}/accept", headers=invitee.headers
    )
    assert again.status_code == 409
    decline_after = await client.post(
        f"/invitations/{created.json()['id']}/decline", headers=invitee.headers
    )
    assert decline_after.status_code == 409
    assert await mine(client, invitee) == []
    added = await outbox_payloads(session_factory, team.project_id, "project.member_added")
    assert sum(invitee.id.encode() in p for p in added) == 1


async def test_declining(client, team: Team, alice: ApiUser):
    created = await invite(client, team, team.owner.headers, alice.email)
    declined = await client.post(
        f"/invitations/{created.json()['id']}/decline", headers=alice.headers
    )
    assert declined.status_code == 204
    assert await mine(client, alice) == []
    assert (
        await client.get(f"/projects/{team.project_id}", headers=alice.headers)
    ).status_code == 404
    accept = await client.post(f"/invitations/{created.json()['id']}/accept", headers=alice.headers)
    assert accept.status_code == 409
    # a new invitation can follow a declined one
    assert (await invite(client, team, team.owner.headers, alice.email)).status_code == 201


async def test_an_address_that_registers_later_sees_it_ignoring_case(client, team: Team):
    email = f"Later-{uuid.uuid4().hex[:8]}@Example.COM"
    created = await invite(client, team, team.owner.headers, email)
    assert created.status_code == 201
    registered = await client.post(
        "/auth/register", json={"name": "Later", "email": email.lower(), "password": PASSWORD}
    )
    assert registered.status_code == 201
    login = await client.post("/auth/login", json={"email": email.lower(), "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    listed = (await client.get("/users/me/invitations", headers=headers)).json()["items"]
    assert [i["id"] for i in listed] == [created.json()["id"]]
    accepted = await client.post(f"/invitations/{created.json()['id']}/accept", headers=headers)
    assert accepted.status_code == 200


async def test_one_pending_invitation_per_address(client, team: Team):
    first = await invite(client, team, team.owner.headers, "dup@x.org")
    second = await invite(client, team, team.maintainer.headers, "DUP@x.org")
    assert first.status_code == 201 and second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")


async def test_expired_invitations_cannot_be_accepted_and_can_be_renewed(
    client, team: Team, alice: ApiUser, session_factory
):
    created = await invite(client, team, team.owner.headers, alice.email)
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE project_invitations SET expires_at = now() - interval '1 minute'"
                " WHERE id = :i"
            ),
            {"i": created.json()["id"]},
        )
        await session.commit()
    assert await mine(client, alice) == []
    listed = await client.get(
        f"/projects/{team.project_id}/invitations", headers=team.owner.headers
    )
    assert listed.json()["items"] == []
    late = await client.post(f"/invitations/{created.json()['id']}/accept", headers=alice.headers)
    assert late.status_code == 409
    renewed = await invite(client, team, team.owner.headers, alice.email)
    assert renewed.status_code == 201
    assert [i["id"] for i in await mine(client, alice)] == [renewed.json()["id"]]


async def test_the_default_lifetime_is_seven_days(client, team: Team):
    created = (await invite(client, team, team.owner.headers, "ttl@x.org")).json()
    lifetime = datetime.fromisoformat(created["expiresAt"]) - datetime.fromisoformat(
        created["createdAt"]
    )
    assert lifetime == timedelta(days=7)


async def test_concurrent_duplicate_invitations_leave_one_row(
    served: httpx.AsyncClient, client, team: Team, session_factory
):
    email = f"race-{uuid.uuid4().hex[:8]}@x.org"
    responses = await asyncio.gather(
        *(invite(served, team, team.owner.headers, email) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, [r.text for r in responses]
    async with session_factory() as session:
        rows = await session.scalar(
            text("SELECT count(*) FROM project_invitations WHERE email = :e"), {"e": email}
        )
    assert rows == 1


async def test_concurrent_accepts_make_one_membership(
    served: httpx.AsyncClient, client, team: Team, session_factory
):
    invitee = await register_and_login(client, "Racer")
    created = (await invite(client, team, team.owner.headers, invitee.email)).json()
    responses = await asyncio.gather(
        *(
            served.post(f"/invitations/{created['id']}/{action}", headers=invitee.headers)
            for action in ["accept"] * 6 + ["decline"] * 2
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(409) == 7, [r.text for r in responses]
    assert statuses[0] in (200, 204)
    async with session_factory() as session:
        members = await session.scalar(
            text("SELECT count(*) FROM project_members WHERE project_id = :p AND user_id = :u"),
            {"p": team.project_id, "u": invitee.id},
        )
    assert members == (1 if statuses[0] == 200 else 0)
    added = await outbox_payloads(session_factory, team.project_id, "project.member_added")
    assert sum(invitee.id.encode() in p for p in added) == members


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": "x"}, {"cursor": "@@"}, {"cursor": "z" * 201}]
)
async def test_my_invitations_bad_query(client, alice: ApiUser, params):
    response = await client.get("/users/me/invitations", params=params, headers=alice.headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_answering_unknown_or_malformed_ids(client, alice: ApiUser):
    for action in ("accept", "decline"):
        unknown = await client.post(f"/invitations/{uuid.uuid4()}/{action}", headers=alice.headers)
        assert unknown.status_code == 404
        malformed = await client.post(f"/invitations/not-a-uuid/{action}", headers=alice.headers)
        assert malformed.status_code == 404
        assert malformed.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.post(f"/invitations/{uuid.uuid4()}/accept")
    assert anonymous.status_code == 401


async def test_a_maintainer_cannot_withdraw_what_only_an_owner_may_grant(
    client, team: Team, alice: ApiUser
):
    created = await invite(client, team, team.owner.headers, alice.email, role="maintainer")
    assert created.status_code == 201, created.text
    path = f"/projects/{team.project_id}/invitations/{created.json()['id']}"
    refused = await client.delete(path, headers=team.maintainer.headers)
    assert refused.status_code == 403, refused.text
    assert [i["role"] for i in await mine(client, alice)] == ["maintainer"]
    assert (await client.delete(path, headers=team.owner.headers)).status_code == 204
