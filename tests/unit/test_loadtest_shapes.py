"""The load shapes the CLI offers are the ones the scenarios define, and each scales the
run's users over its time as documented. Locust monkey-patches the process (gevent) when
imported, so the scenarios are imported in a child process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from taskstream.cli.loadtest_run import SHAPE_NAMES
from taskstream.loadtesting.locust_process import parse_duration
from tests.processes import ChildProcess

PROBE = """
import json
from loadtest.scenarios.shapes import SHAPES
points = (0.0, 0.1, 0.17, 0.3, 0.34, 0.5, 0.6, 0.7, 0.9)
print(json.dumps({name: [shape.users_at(None, p, 12) for p in points]
                  for name, shape in SHAPES.items()}))
"""


def test_cli_offers_exactly_the_defined_shapes_and_each_scales_the_users(tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    child = ChildProcess([sys.executable, "-c", PROBE], log=log).start()
    assert child.process is not None
    assert child.process.wait(60) == 0, child.output()
    users = json.loads(child.output().strip().splitlines()[-1])
    assert set(SHAPE_NAMES) == {"none", *users}
    #                      0.0 0.1 .17 0.3 .34 0.5 0.6 0.7 0.9
    assert users["ramp"] == [1, 4, 7, 11, 12, 12, 12, 12, 12]
    assert users["step"] == [3, 3, 3, 6, 6, 9, 9, 9, 12]
    assert users["spike"] == [3, 3, 3, 3, 3, 12, 3, 3, 3]


def test_durations_read_like_locusts() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "2m", "1h30m")] == [90, 90, 120, 5400]
