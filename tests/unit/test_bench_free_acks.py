"""The benchmark's free acknowledgements (loadtest/bench_routes.py): the waiters of one interval
are released together by one timer, none before it, and no timer runs while nobody waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loadtest.bench_routes import FreeAcks


async def test_one_timer_releases_every_waiter_of_its_interval_and_only_then() -> None:
    acks = FreeAcks(interval_s=0.05)
    waiters = [acks.wait() for _ in range(100)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # nothing is acknowledged before the interval
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=2)
    late = acks.wait()  # a waiter after the release waits for a timer of its own
    assert not late.done()
    await asyncio.wait_for(late, timeout=2)


async def test_no_timer_is_armed_while_nobody_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    acks = FreeAcks(interval_s=0.0123)  # a delay nothing else arms
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_later = loop.call_later

    def counting_call_later(delay: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if delay == acks.interval_s:
            armed.append(delay)
        return call_later(delay, *args, **kwargs)

    monkeypatch.setattr(loop, "call_later", counting_call_later)
    await asyncio.sleep(0.05)
    assert armed == []  # idle: no timer
    first = acks.wait()
    acks.wait()  # a second waiter of the same interval shares the timer
    assert armed == [0.0123]
    await asyncio.wait_for(first, timeout=2)
