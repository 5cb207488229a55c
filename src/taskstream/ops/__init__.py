"""The operator dashboard: ``GET /ops`` and its JSON routes under ``/ops/api``."""
