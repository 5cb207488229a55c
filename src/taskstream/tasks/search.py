"""Full-text search over task titles and descriptions: the one document expression (shared by
the GIN index in the model and migration, and by every query, which must repeat it exactly for
PostgreSQL to use the index) and the reading of ``q``.

``q`` is web-search syntax, read by PostgreSQL's ``websearch_to_tsquery``, which accepts any
text without a syntax error: words are all required, ``"a phrase"`` must appear in that order,
``or`` between words means either, ``-word`` excludes. A word ending in ``*`` (``deplo*``)
matches every word starting with it; such prefix terms are always required. Matching is on
whole words, case-insensitive, with no stemming and no stop words (the ``simple``
configuration): task text is full of identifiers, names and code, which stemming would mangle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from taskstream.errors import FieldError, ValidationFailedError

SEARCH_CONFIG: Final = "simple"
# The indexed document. Written as Alembic reads it back from PostgreSQL, so `alembic check`
# sees no drift and the model, the migration and the Prisma-like schema carry one string.
SEARCH_DOCUMENT: Final = (
    "to_tsvector('simple'::regconfig, (title::text || ' '::text) || "
    "COALESCE(description, ''::text))"
)
MAX_QUERY_LENGTH: Final = 200
MAX_PREFIX_TERMS: Final = 8

# A prefix term: letters and digits only (nothing a tsquery could read as an operator).
_PREFIX = re.compile(r"(?<![^\s\"(])([^\W_]+)\*")
_SEARCHABLE = re.compile(r"[^\W_]")
# An excluded term (websearch syntax: "-" at the start of a term).
_EXCLUDED = re.compile(r"(?:^|(?<=\s))-\S*")


@dataclass(frozen=True, slots=True)
class TextSearch:
    """``q`` split into what ``websearch_to_tsquery`` reads and the prefix terms, as a
    ``to_tsquery`` text built only from letters and digits (None: no prefix term)."""

    words: str
    prefixes: str | None


def parse_search(q: str | None) -> TextSearch | None:
    """The search ``q`` asks for; None for no search (absent or blank); 422 for a ``q`` that
    has no letter or digit (it could never match anything)."""
    if q is None or not q.strip():
        return None
    if len(q) > MAX_QUERY_LENGTH or "\x00" in q:
        # Also checked at the edge; repeated so the rule holds for every caller.
        raise ValidationFailedError(
            [FieldError("q", f"must be at most {MAX_QUERY_LENGTH} characters, without NUL")]
        )
    if not _SEARCHABLE.search(q):
        raise ValidationFailedError([FieldError("q", "must contain a letter or a digit")])
    prefixes = _PREFIX.findall(q)
    if len(prefixes) > MAX_PREFIX_TERMS:
        raise ValidationFailedError(
            [FieldError("q", f"must hold at most {MAX_PREFIX_TERMS} prefix terms (word*)")]
        )
    words = _PREFIX.sub(" ", q)
    if not prefixes and not _SEARCHABLE.search(_EXCLUDED.sub(" ", words)):
        # Only exclusions: nearly every task matches and no index can find them (a scan).
        raise ValidationFailedError(
            [FieldError("q", "must include a word to find, not only excluded (-word) ones")]
        )
    return TextSearch(
        words=words,
        prefixes=" & ".join(f"'{p}':*" for p in prefixes) if prefixes else None,
    )
