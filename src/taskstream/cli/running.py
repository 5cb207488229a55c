"""How every long-running `taskstream` process runs its main coroutine."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` on uvloop if present; SIGTERM/SIGINT set ``stop``, so the process
    finishes what it holds (the batch in flight, pending confirms) and exits cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        asyncio.run(runner())
    else:
        uvloop.run(runner())
