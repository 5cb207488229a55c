"""Process-level helpers shared by the API, the consumers and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc

GC_GEN0_THRESHOLD = 50_000


def tune_gc(gen2_threshold: int = 100) -> None:
    """Fewer cyclic-GC passes on a hot loop; call once, after start-up.

    A request or a consumer batch allocates many short-lived container objects, and with the
    default gen-0 threshold of 700 the collector walks them over and over (about 7 % of a
    loaded API worker, a fifth of the applier's CPU). Objects alive after start-up (modules,
    the app, pools) are frozen out of every future collection, and gen-0 collections run every
    50k allocations. Cycles are still collected: this changes when garbage is found, not
    whether, and memory stays bounded by the higher threshold.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, gen2_threshold)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
