"""Password-reset tokens: ``<reset id>.<HMAC-SHA256(key, reset id)>``, nothing stored.

The database row (``password_resets``) and the ``user.password_reset_requested`` event hold
only the id; the email renderer derives the token from it with the key, and confirming
recomputes the MAC. So neither a copy of the database nor a reader of the event stream
(RabbitMQ, the Kafka events topic) can reset anyone's password.

The key is derived from the signing material the API and the workers already share (the
HS* secret, or the RS* private key) under its own label, so it is never equal to the JWT key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from taskstream.settings import AuthSettings

KEY_LABEL = b"taskstream password reset v1"
MAC_CHARS = 43  # base64url of 32 bytes, unpadded


def _key(settings: AuthSettings) -> bytes:
    if settings.jwt_algorithm.startswith("HS"):
        material = settings.jwt_secret.get_secret_value().encode()
    else:
        key_file = settings.jwt_private_key_file
        material = key_file.read_bytes() if key_file is not None else b""
    if not material:  # Settings validation makes this unreachable outside hand-built settings
        raise RuntimeError("no signing material configured for password-reset tokens")
    return hmac.new(material, KEY_LABEL, hashlib.sha256).digest()


def _mac(settings: AuthSettings, reset_id: uuid.UUID) -> str:
    digest = hmac.new(_key(settings), reset_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def reset_token(settings: AuthSettings, reset_id: uuid.UUID) -> str:
    """The token a reset email carries for ``reset_id``."""
    return f"{reset_id.hex}.{_mac(settings, reset_id)}"


def reset_id_of(settings: AuthSettings, token: str) -> uuid.UUID | None:
    """The reset id of a genuine token; None for anything else (compared in constant time)."""
    id_part, _, mac = token.strip().partition(".")
    if len(id_part) != 32 or len(mac) != MAC_CHARS:
        return None
    try:
        reset_id = uuid.UUID(hex=id_part)
    except ValueError:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(settings, reset_id).encode()):
        return None
    return reset_id


def reset_link(settings: AuthSettings, reset_id: uuid.UUID) -> str:
    """``auth.password_reset_url`` with the token in place of ``{token}``."""
    return settings.password_reset_url.replace("{token}", reset_token(settings, reset_id))
