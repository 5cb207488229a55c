"""Reading JSON request bodies with a bounded nesting depth.

Litestar decodes a body without a target type first and converts it to the handler's struct
afterwards. msgspec's untyped decoder recurses once per nesting level and raises
``RecursionError`` near the interpreter's recursion limit (about 1000 ``[``), which no
handler expects: the client got a 500. Here a body deeper than ``MAX_JSON_DEPTH`` is refused
with 400 before it is decoded.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, Final

from litestar import Request
from litestar.exceptions import ClientException
from litestar.types import Empty

from taskstream.fields import MAX_JSON_DEPTH

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``body`` nests arrays/objects deeper than ``limit``.

    The count of opening brackets bounds the depth from above, so an ordinary body is settled
    by two C-speed counts. Only a body with many brackets is scanned: strings are cut out (a
    ``[`` inside a string does not nest), then the brackets are summed as a running depth."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0) > limit


class ApiRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies are depth-checked before they are decoded."""

    async def json(self) -> Any:
        if self._connection_state.json is Empty:
            body = await self.body()
            if json_depth_exceeds(body):
                raise ClientException(
                    detail=f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels"
                )
        return await super().json()
