"""Load shapes selectable by name (``--shape`` of ``taskstream loadtest run``, or
``LOADTEST_SHAPE``): each scales the run's ``--users``, ``--spawn-rate`` and ``--run-time``.

- ``ramp``: rise linearly to the full count over the first third, hold, stop at the end;
- ``step``: four equal steps of a quarter of the users each;
- ``spike``: a quarter of the users, the full count for the middle fifth, a quarter again.
"""

from __future__ import annotations

import math
import os

from locust import LoadTestShape


class _Shape(LoadTestShape):
    abstract = True
    use_common_options = True  # the run's -u/-r/-t scale the shape

    def _run(self) -> tuple[int, float, float]:
        opts = self.runner.environment.parsed_options
        return max(1, opts.num_users or 1), float(opts.spawn_rate or 1), float(opts.run_time or 60)

    def tick(self) -> tuple[int, float] | None:
        users, rate, total = self._run()
        now = self.get_run_time()
        if now >= total:
            return None
        return self.users_at(now / total, users), rate

    def users_at(self, progress: float, users: int) -> int:
        raise NotImplementedError


class RampShape(_Shape):
    abstract = False

    def users_at(self, progress: float, users: int) -> int:
        return max(1, math.ceil(users * min(1.0, progress * 3)))


class StepShape(_Shape):
    abstract = False

    def users_at(self, progress: float, users: int) -> int:
        return max(1, math.ceil(users * (math.floor(progress * 4) + 1) / 4))


class SpikeShape(_Shape):
    abstract = False

    def users_at(self, progress: float, users: int) -> int:
        return users if 0.4 <= progress < 0.6 else max(1, math.ceil(users / 4))


SHAPES: dict[str, type[LoadTestShape]] = {
    "ramp": RampShape,
    "step": StepShape,
    "spike": SpikeShape,
}


def selected_shape() -> type[LoadTestShape] | None:
    """The shape named by ``LOADTEST_SHAPE`` (none: locust's own -u/-r/-t)."""
    name = os.environ.get("LOADTEST_SHAPE", "").strip().lower()
    if not name or name == "none":
        return None
    if name not in SHAPES:
        raise SystemExit(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    return SHAPES[name]
