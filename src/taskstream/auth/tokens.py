"""JWT access tokens (PyJWT) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.principal import Principal
from taskstream.settings import AuthSettings

REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss"]
VERIFIED_CACHE_SIZE = 50_000
# Domain separation: the lookup hash and the sealing key are both SHA-256 of the token, and
# must never be equal (the database holds the lookup hash).
SEALING_KEY_LABEL = b"taskstream refresh successor v1\x00"
NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenCodec:
    """Signs and verifies access tokens with exactly one configured algorithm.

    Verification pins ``algorithms=[configured]``, so ``alg: none`` and algorithm-confusion
    tokens (e.g. HS256 signed with an RSA public key) are refused by PyJWT itself.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.algorithm = settings.jwt_algorithm
        self._verified: dict[str, tuple[Principal, float]] = {}
        if self.algorithm.startswith("RS"):
            private, public = settings.jwt_private_key_file, settings.jwt_public_key_file
            if private is None or public is None:  # Settings validation refuses this already
                raise ValueError("RS* algorithms need a private and a public key file")
            self._signing_key: Any = private.read_bytes()
            self._verifying_key: Any = public.read_bytes()
        else:
            secret = settings.jwt_secret.get_secret_value()
            self._signing_key = self._verifying_key = secret

    def issue_access(
        self, user_id: uuid.UUID, role: UserRole, token_version: int = 0
    ) -> IssuedToken:
        """A signed access token; ``token_version`` is the user's current version (``ver``)."""
        now = int(time.time())
        ttl = self.settings.access_token_ttl_s
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "ver": token_version,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "iss": self.settings.issuer,
        }
        return IssuedToken(jwt.encode(claims, self._signing_key, algorithm=self.algorithm), ttl)

    def verify(self, token: str) -> Principal:
        """The principal of a valid access token; ``UnauthorizedError`` for anything else.

        A token already verified by this process is answered from memory until its ``exp``:
        clients send the same token thousands of times, and the signature cannot change.
        """
        cached = self._verified.get(token)
        if cached is not None and cached[1] + self.settings.leeway_s >= time.time():
            return cached[0]
        principal, expires_at = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires_at)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
            version = claims.get("ver", 0)
            if type(version) is not int:
                raise ValueError("ver must be an integer")
            principal = Principal(
                user_id=uuid.UUID(claims["sub"]),
                role=UserRole(claims["role"]),
                token_version=version,
            )
            return principal, float(claims["exp"])
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("The access token has expired") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
            raise UnauthorizedError("The access token is invalid") from exc


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the hash stored in its place."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_refresh_token(raw)


def hash_refresh_token(raw: str) -> str:
    # 256 random bits need no slow hash: SHA-256 makes a leaked table useless to an attacker.
    return hashlib.sha256(raw.encode()).hexdigest()


def _sealing_key(raw: str) -> bytes:
    # 256 random bits in the token: a single hash is a sound key derivation for them.
    return hashlib.sha256(SEALING_KEY_LABEL + raw.encode()).digest()


def seal_successor(raw: str, successor: bytes) -> bytes:
    """Encrypt what the rotation of refresh token ``raw`` issued, under a key only ``raw``
    yields. The row stores the token's SHA-256, never the token, so a copy of the database
    (or of a backup) cannot open it; only someone presenting the old token can."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(_sealing_key(raw)).encrypt(nonce, successor, None)


def open_successor(raw: str, sealed: bytes) -> bytes | None:
    """The plaintext of ``seal_successor(raw, ...)``; None if ``sealed`` is not that."""
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        return AESGCM(_sealing_key(raw)).decrypt(nonce, ciphertext, None)
    except (InvalidTag, ValueError):
        return None
