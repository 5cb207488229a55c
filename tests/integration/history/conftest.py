"""Fixtures of the history tests: a crew per test."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.comments.support import Crew, make_crew


@pytest.fixture
async def crew(client: httpx.AsyncClient) -> Crew:
    return await make_crew(client)
