"""Load tests (locust) and benchmark runners."""
