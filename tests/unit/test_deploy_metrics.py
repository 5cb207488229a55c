"""The dashboard and the alert rules under deploy/ only name series the code exports, so they
cannot drift from it; and every series the code exports has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from taskstream.observability.metrics import metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "taskstream.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SERIES = re.compile(r"\btaskstream_[a-z0-9_]+\b")


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _named(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in SERIES.findall(expr)}


def test_the_dashboard_names_only_exported_series_and_shows_every_one() -> None:
    used = _named(_dashboard_exprs())
    assert used - metric_names() == set()
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    exported = {re.sub(r"_(bucket|sum|count)$", "", name) for name in metric_names()}
    assert exported - shown == set(), "series without a panel"


def test_the_alert_rules_name_only_exported_series() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert len(names) == len(set(names))
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    used = _named(_alert_exprs())
    assert used, "the rules use taskstream series"
    assert used - metric_names() == set()
    # the four situations the rules must cover
    joined = " ".join(_alert_exprs())
    for series in (
        "taskstream_consumer_lag",
        "taskstream_outbox_oldest_unsent_age_seconds",
        "taskstream_rabbitmq_queue_messages",
        "taskstream_dependency_up",
    ):
        assert series in joined
