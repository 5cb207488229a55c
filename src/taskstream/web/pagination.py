"""The one page-size rule of every list route.

``limit`` must be an integer of at least 1 (422 otherwise); a larger value than
``api.page_limit_max`` is lowered to it rather than refused, so a client asking for "everything"
gets full pages and a ``nextCursor`` instead of an error. Lists page with opaque cursors.
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import QueryParameter

from taskstream.settings import ApiSettings

DEFAULT_PAGE_SIZE: Final = 50
# Bounds what reaches int conversion and the schema; the effective cap is the setting.
_LARGEST_ACCEPTED: Final = 1_000_000

PageLimit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=_LARGEST_ACCEPTED,
        description="Page size, at least 1; values above the server's maximum "
        "(api.page_limit_max, 200 by default) are lowered to it.",
    ),
]


def page_size(limit: int, api: ApiSettings) -> int:
    """The number of items a page holds for a requested ``limit``."""
    return min(limit, api.page_limit_max)
