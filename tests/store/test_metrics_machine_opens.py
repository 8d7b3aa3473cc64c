"""Machine opens: opens seconds after delivery or through a known image proxy count as opens, not as human opens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import refresh_campaign_metrics, rollup
from tests.store.metrics_fixtures import DAY1, insert, send

GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
LATER = DAY1 + timedelta(days=2)


def opened(con, lead: str, after_delivery: timedelta, detail: dict | str | None = None, kind: str = "opened") -> None:
    """An email delivered at 10:10 and opened (or clicked) `after_delivery` later, with the provider's detail."""
    send(con, lead, 1, "email", "sent", DAY1, ("delivered",))
    insert(con, "delivery_events", event_id=f"e_{lead}_{kind}", send_id=f"s_{lead}_1", campaign_id="c1", touch=1, lead_id=lead,
           channel="email", event_type=kind, occurred_at=DAY1 + timedelta(minutes=10) + after_delivery,
           detail=json.dumps(detail) if isinstance(detail, dict) else detail, ingested_at=LATER)


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "m.duckdb") as connection:
        opened(connection, "H1", timedelta(hours=2))  # a person, two hours later
        opened(connection, "H2", timedelta(minutes=5), {"user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X) AppleWebKit/605.1.15"})
        opened(connection, "H3", timedelta(hours=1), "not json at all")  # an unreadable detail is no proxy, and no error
        opened(connection, "H4", timedelta(hours=3), {"click": {"link": "https://x"}}, kind="clicked")
        opened(connection, "M1", timedelta(seconds=2))  # fetched two seconds after delivery: a machine
        opened(connection, "M2", timedelta(hours=5), {"user_agent": GMAIL_PROXY})
        opened(connection, "M3", timedelta(hours=5), {"user_agent": "Mozilla/5.0"})  # Apple Mail Privacy Protection's bare agent
        opened(connection, "M4", timedelta(hours=5), {"ipAddress": "17.58.101.4", "userAgent": "Mozilla/5.0 (iPhone)"})  # Apple's 17/8
        opened(connection, "M5", timedelta(seconds=3), {"user_agent": "Mozilla/5.0 (Windows NT 10.0)"}, kind="clicked")  # a link scanner
        send(connection, "N1", 1, "email", "sent", DAY1, ("delivered",))  # delivered, never opened
        yield connection


def test_all_opens_and_human_opens_side_by_side(con):
    whole = rollup(con, LATER)
    whole = whole[(whole["touch"] == 0) & (whole["channel"] == "all")].iloc[0]
    assert whole["emails_delivered"] == 10
    assert whole["opened"] == 9 and whole["open_rate"] == pytest.approx(9 / 10)
    assert whole["human_opened"] == 4 and whole["human_open_rate"] == pytest.approx(4 / 10)  # H1-H4


def test_campaign_metrics_keep_both_rates(con):
    frame = refresh_campaign_metrics(con, LATER)
    stored = con.execute("SELECT opened, human_opened, open_rate, human_open_rate FROM campaign_metrics WHERE touch = 0").fetchall()
    assert stored == [(9, 4, pytest.approx(0.9), pytest.approx(0.4))]
    assert list(frame.loc[frame["touch"] == 1, "human_opened"]) == [4]


def test_an_open_counted_before_its_machine_window_ends_is_not_human_yet(con):
    at = DAY1 + timedelta(minutes=10, seconds=5)  # M1's machine open and no other open exists yet
    whole = rollup(con, at)
    whole = whole[(whole["touch"] == 0) & (whole["channel"] == "all")].iloc[0]
    assert (whole["opened"], whole["human_opened"]) == (2, 0)  # M1 (2 s) and M5's click (3 s): both machines
