"""Alerts: complaint, opt-out, bounce and failure rates past their lines, a delivery drop; a failing check names the campaign,
and the owner is told (the `alerts` table, emailed when an email provider is set)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.domain.metrics import alerts
from outbound_pipeline.engine.report import campaign_report, campaign_terminal_summary, load_campaign
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


def _complaining_campaign(con, owner: str = "owner@example.com") -> None:
    """30 delivered emails, one marked as spam (3.3 %, above 0.3 %), in a campaign whose owner is `owner`."""
    insert(con, "campaigns", campaign_id="c1", spec=json.dumps({"name": "c1", "owner_email": owner}), status="running")
    for i in range(30):
        send(con, f"M{i}", 1, "email", "sent", DAY1, ("delivered", "complained") if i == 0 else ("delivered",))


def test_alerts_are_kept_for_the_owner_once_a_day(driver, db):
    with db() as con:
        _complaining_campaign(con)
    first = driver.run(["campaign_metrics", "alerts"], DAY1 + timedelta(days=1), raise_on_error=False)
    again = driver.run(["campaign_metrics", "alerts"], DAY1 + timedelta(days=1, hours=1), raise_on_error=False)
    next_day = driver.run(["campaign_metrics", "alerts"], DAY1 + timedelta(days=2), raise_on_error=False)
    news = [r.asset_materializations_for_node("alerts")[0].metadata["new"].value for r in (first, again, next_day)]
    assert news == [1, 0, 1]  # raised, not repeated within the day, raised again the next day while it lasts
    with db() as con:
        rows = con.execute("SELECT campaign_id, metric, round(value, 4), threshold, owner_email, message, emailed_at FROM alerts "
                           "ORDER BY raised_at").fetchall()
    assert [r[:5] for r in rows] == [("c1", "complaint_rate", 0.0333, 0.003, "owner@example.com")] * 2
    assert rows[0][5] == "c1: complaint rate 3.3% is above 0.3% (30 counted)" and rows[0][6] is None  # no email provider: kept only


def test_the_owner_is_emailed_through_resend_once(driver, db, httpserver: HTTPServer):
    httpserver.expect_request("/emails", method="POST").respond_with_json({"id": "alert-mail-1"})
    driver.base["channels"] = ChannelService(resend_api_key="re_test_123", resend_base_url=httpserver.url_for("/"), email_per_second=0)
    with db() as con:
        _complaining_campaign(con, owner="ops-lead@example.com")
    now = DAY1 + timedelta(days=1)
    result = driver.run(["campaign_metrics", "alerts"], now, raise_on_error=False)
    driver.run(["alerts"], now + timedelta(minutes=30))  # the same alert: not emailed twice
    assert result.asset_materializations_for_node("alerts")[0].metadata["owners_emailed"].value == 1
    posted = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert len(posted) == 1 and posted[0]["to"] == ["ops-lead@example.com"] and "complaint rate 3.3%" in posted[0]["text"]
    with db() as con:
        assert con.execute("SELECT emailed_at FROM alerts").fetchall() == [(now,)]
        report = load_campaign(con, "c1", now)
    assert any("complaint rate 3.3% is above 0.3%" in line for line in report.alerts)
    assert "complaint rate 3.3% is above 0.3%" in campaign_report(report) and "Alerts:" in campaign_terminal_summary(report)
