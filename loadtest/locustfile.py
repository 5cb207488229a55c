"""Locust entry point: re-exports the scenarios in loadtest/scenarios/ (and the load shape
named by ``LOADTEST_SHAPE``, if any: locust uses a shape class it finds here).

    taskstream loadtest run --users 20 --spawn-rate 5 --time 60s   # seeds, runs, verifies
    locust -f loadtest/locustfile.py --run-dir loadtest/results/<run-id>   # by hand
"""

from loadtest.scenarios.auth_churn import AuthChurn
from loadtest.scenarios.ingest import IngestClient
from loadtest.scenarios.reader import Reader
from loadtest.scenarios.shapes import selected_shape
from loadtest.scenarios.team import ProjectTeam

__all__ = ["AuthChurn", "IngestClient", "ProjectTeam", "Reader"]

if (_shape := selected_shape()) is not None:
    SelectedShape = _shape
    __all__ += ["SelectedShape"]
