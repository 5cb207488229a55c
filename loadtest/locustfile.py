"""Locust entry point: re-exports the scenarios in loadtest/scenarios/."""

from loadtest.scenarios.api import ApiClient

__all__ = ["ApiClient"]
