"""Publish timeouts for many concurrent requests with one timer per time slot.

``asyncio.timeout()`` schedules (and cancels) one loop timer per request; on ``POST /tasks``
that was ~5 % of the worker's CPU. Here every request whose deadline falls in the same
``slot_s`` window shares one timer, and arming costs a list append. A deadline fires at the
start of its slot, so a wait is cut at most ``slot_s`` early and never later than the timeout.

Expiry works like ``asyncio.timeout``: the waiting task is cancelled, and the waiter turns that
cancellation into its own error only when the deadline caused it (``expired_here``), so a
cancellation from elsewhere (the client went away) still propagates.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

MAX_SLOT_S: Final = 0.05


class Deadline:
    __slots__ = ("armed", "expired", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.armed = True
        self.expired = False

    def disarm(self) -> None:
        self.armed = False

    def expired_here(self) -> bool:
        """True when this deadline cancelled the task and nobody else did as well; consumes
        the cancellation like ``asyncio.timeout`` does."""
        if not self.expired or self.task is None:
            return False
        return self.task.uncancel() == 0


class TimeoutSlots:
    """Deadlines of ``timeout_s`` for the current task, grouped into shared timer slots."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.slot_s = min(MAX_SLOT_S, timeout_s / 10)
        self._slots: dict[int, list[Deadline]] = {}

    def arm(self) -> Deadline:
        """Start the clock for the current task; ``disarm()`` the result when done."""
        loop = asyncio.get_running_loop()
        deadline = Deadline(asyncio.current_task())
        # floor: the slot's timer fires at or before this request's own deadline
        slot = math.floor((loop.time() + self.timeout_s) / self.slot_s)
        waiting = self._slots.get(slot)
        if waiting is None:
            waiting = self._slots[slot] = []
            loop.call_at(slot * self.slot_s, self._expire, slot)
        waiting.append(deadline)
        return deadline

    def _expire(self, slot: int) -> None:
        for deadline in self._slots.pop(slot, ()):
            if deadline.armed and deadline.task is not None and not deadline.task.done():
                deadline.expired = True
                deadline.task.cancel()
