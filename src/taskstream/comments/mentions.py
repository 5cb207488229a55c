"""@mentions in a comment body: Slack-style ``<@userId>`` tokens.

A client's mention picker inserts the token and renders it as the user's name; the server
never guesses a person from free text (``@ada`` is ambiguous, names change, emails leak), so a
mention means exactly one user id. Anything that is not a well-formed token is plain text.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

MENTION: Final = re.compile(
    r"<@([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})>"
)


def mentioned_user_ids(body: str) -> list[uuid.UUID]:
    """The distinct user ids mentioned in ``body``, in order of first appearance."""
    seen: dict[uuid.UUID, None] = {}
    for match in MENTION.finditer(body):
        seen.setdefault(uuid.UUID(match.group(1)), None)
    return list(seen)
