"""The benchmark's free acknowledgements (src/taskstream/bench.py): every waiter is released by
the next tick, none before it, and a stopped ticker releases nobody (no broker, no I/O)."""

from __future__ import annotations

import asyncio
import contextlib

from taskstream.bench import FreeAcks


async def test_one_tick_releases_every_waiter_and_only_then() -> None:
    acks = FreeAcks(interval_s=0.05)
    waiters = [acks.wait() for _ in range(100)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # nothing is acknowledged without a tick
    ticker = asyncio.create_task(acks.run())
    try:
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=2)
        late = acks.wait()  # a waiter after the tick waits for the next one
        assert not late.done()
        await asyncio.wait_for(late, timeout=2)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


async def test_without_the_ticker_nothing_is_released() -> None:
    acks = FreeAcks(interval_s=0.01)
    waiter = acks.wait()
    await asyncio.sleep(0.05)
    assert not waiter.done()
    waiter.cancel()
