"""Alerts: complaint, opt-out, bounce and failure rates past their lines, a delivery drop; a failing check names the campaign."""

from __future__ import annotations

from datetime import timedelta

import pytest

from outbound_pipeline.domain.metrics import alerts
from tests.store.metrics_fixtures import DAY1, insert, send

BASE = {"sent": 100, "delivered": 98, "failed": 0, "complained": 0, "opted_out": 0, "leads_reached": 98, "emails_sent": 100,
        "emails_bounced": 2, "emails_delivered": 98}


def test_a_healthy_campaign_raises_nothing():
    assert alerts("c", BASE) == []


@pytest.mark.parametrize(("change", "metric"), [
    ({"complained": 1}, "complaint_rate"),  # 1 in 98 is above Gmail's 0.3 %
    ({"opted_out": 3}, "opt_out_rate"),
    ({"emails_bounced": 6}, "bounce_rate"),
    ({"failed": 6}, "failure_rate"),
])
def test_each_line(change, metric):
    found = alerts("c", {**BASE, **change})
    assert [a.metric for a in found] == [metric] and found[0].campaign_id == "c" and "above" in found[0].message


def test_too_few_messages_to_judge():
    assert alerts("c", {"sent": 10, "emails_delivered": 10, "complained": 1, "delivered": 10}) == []


def test_delivery_drop_against_the_day_before():
    before = {"sent": 100, "delivered": 98}
    assert [a.metric for a in alerts("c", {**BASE, "sent": 150, "delivered": 128}, before)] == ["delivery_drop"]  # 30 of 50: 60 %
    assert alerts("c", {**BASE, "sent": 150, "delivered": 146}, before) == []  # 48 of 50


def test_failing_check_on_a_campaign_past_the_complaint_line(driver, db):
    with db() as con:
        for i in range(30):
            send(con, f"M{i}", 1, "email", "sent", DAY1, ("delivered", "complained") if i == 0 else ("delivered",))
        insert(con, "research_snippets", campaign_id="c1", lead_id="M0", snippet_id="s", rank=1, cost_usd=0.0, retrieved_at=DAY1)
    result = driver.run(["campaign_metrics"], DAY1 + timedelta(days=1), raise_on_error=False)
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["campaign_alerts"]
    assert checks[0].passed is False
    assert "c1: complaint rate 3.3% is above 0.3%" in checks[0].metadata["details"].value
