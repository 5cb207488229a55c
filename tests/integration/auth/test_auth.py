"""Register, login, refresh rotation, logout, /users/me and refused tokens."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from taskstream.auth.tokens import TokenCodec
from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.settings import AuthSettings
from tests.integration.http_support import (
    PASSWORD,
    ApiUser,
    age_refresh_rotation,
    register_and_login,
)

PROBLEM = "application/problem+json"


async def test_register_creates_user_and_personal_project(client, session_factory):
    email = f"reg-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/auth/register", json={"name": "Reg", "email": email, "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email and body["name"] == "Reg"
    async with session_factory() as session:
        row = (
            await session.execute(
                text("SELECT is_personal, owner_id FROM projects WHERE id = :id"),
                {"id": body["personalProjectId"]},
            )
        ).one()
        events = (
            (
                await session.execute(
                    text("SELECT event_type FROM outbox WHERE aggregate_id IN (:u, :p)"),
                    {"u": body["id"], "p": body["personalProjectId"]},
                )
            )
            .scalars()
            .all()
        )
    assert row.is_personal and str(row.owner_id) == body["id"]
    assert sorted(events) == ["project.created", "user.created"]


async def test_register_refuses_taken_email_weak_password_and_bad_email(client, alice: ApiUser):
    taken = await client.post(
        "/auth/register", json={"name": "X", "email": alice.email, "password": PASSWORD}
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith(PROBLEM)
    weak = await client.post(
        "/auth/register", json={"name": "X", "email": "weak@example.com", "password": "short"}
    )
    assert weak.status_code == 422
    assert {e["path"] for e in weak.json()["errors"]} == {"password"}
    bad = await client.post(
        "/auth/register", json={"name": "X", "email": "not-an-email", "password": PASSWORD}
    )
    assert bad.status_code == 422
    assert "email" in {e["path"] for e in bad.json()["errors"]}


async def test_login_returns_both_token_names_and_refuses_wrong_password(client, alice):
    ok = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})
    body = ok.json()
    assert ok.status_code == 200
    assert body["token"] == body["accessToken"]
    assert body["tokenType"] == "Bearer" and body["expiresIn"] > 0 and body["refreshToken"]
    wrong = await client.post("/auth/login", json={"email": alice.email, "password": "nope-nope1"})
    assert wrong.status_code == 401
    assert wrong.json()["type"] == "https://taskstream.dev/problems/unauthorized"


async def test_users_me(client, alice: ApiUser):
    response = await client.get("/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["id"] == alice.id
    assert response.json()["personalProjectId"] == alice.personal_project_id


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client, alice: ApiUser, session_factory
):
    first = await client.post("/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["refreshToken"]
    assert rotated != alice.refresh_token
    await age_refresh_rotation(session_factory, alice.refresh_token, seconds=3600)
    reused = await client.post("/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert reused.status_code == 401
    # the family is revoked: even the legitimately rotated token is dead now
    after = await client.post("/auth/refresh", json={"refreshToken": rotated})
    assert after.status_code == 401


async def test_logout_revokes_the_refresh_token(client, alice: ApiUser):
    out = await client.post(
        "/auth/logout", json={"refreshToken": alice.refresh_token}, headers=alice.headers
    )
    assert out.status_code == 204
    again = await client.post("/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert again.status_code == 401


def _claims(user: ApiUser, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user.id,
        "role": "member",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "iss": "taskstream",
    }
    claims.update(overrides)
    return claims


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c, s: jwt.encode(c, None, algorithm="none"), id="alg-none"),
        pytest.param(lambda c, s: jwt.encode(c, "x" * 40, algorithm="HS256"), id="wrong-key"),
        pytest.param(lambda c, s: jwt.encode(c, s, algorithm="HS512"), id="other-alg"),
        pytest.param(
            lambda c, s: jwt.encode({**c, "exp": int(time.time()) - 120}, s, algorithm="HS256"),
            id="expired",
        ),
        pytest.param(
            lambda c, s: jwt.encode({k: v for k, v in c.items() if k != "jti"}, s, "HS256"),
            id="no-jti",
        ),
        pytest.param(lambda c, s: "not.a.jwt", id="garbage"),
    ],
)
# the forged HS512 token is signed with our (HS256-sized) secret on purpose
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_tokens_are_refused(client, alice: ApiUser, api_settings, forge):
    secret = api_settings.auth.jwt_secret.get_secret_value()
    token = forge(_claims(alice), secret)
    response = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_signature_with_our_secret_is_accepted(client, alice, api_settings):
    secret = api_settings.auth.jwt_secret.get_secret_value()
    token = jwt.encode(_claims(alice), secret, algorithm="HS256")
    response = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_missing_token_is_401(client):
    assert (await client.get("/users/me")).status_code == 401


async def test_token_of_a_deleted_user_is_refused(client, session_factory):
    user = await register_and_login(client, "Gone")
    async with session_factory() as session:
        await session.execute(
            text("UPDATE users SET deleted_at = now() WHERE id = :id"), {"id": user.id}
        )
        await session.commit()
    response = await client.get("/users/me", headers=user.headers)
    assert response.status_code == 401
    refreshed = await client.post("/auth/refresh", json={"refreshToken": user.refresh_token})
    assert refreshed.status_code == 401


def test_rs256_tokens_round_trip_and_refuse_hs256_confusion(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "private.pem"
    public = tmp_path / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public.write_bytes(public_pem)
    codec = TokenCodec(
        AuthSettings(
            jwt_algorithm="RS256", jwt_private_key_file=private, jwt_public_key_file=public
        )
    )
    user_id = uuid.uuid4()
    issued = codec.issue_access(user_id, UserRole.ADMIN)
    assert jwt.get_unverified_header(issued.token)["alg"] == "RS256"
    principal = codec.verify(issued.token)
    assert principal.user_id == user_id and principal.is_admin
    # algorithm confusion: an HS256 token "signed" with the public key must not verify
    claims = {
        "sub": str(user_id),
        "role": "admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "x",
        "iss": "taskstream",
    }
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(UnauthorizedError):
        codec.verify(signing_input + "." + b64(signature))
