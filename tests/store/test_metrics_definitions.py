"""The rates to the product's definitions, on a hand-built campaign whose answers were worked out on paper."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import daily_metrics, record_conversion, refresh_campaign_metrics, refresh_daily_metrics, rollup
from tests.store.metrics_fixtures import DAY1, DAY2, build_campaign

LATER = DAY2 + timedelta(days=3)


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "m.duckdb") as connection:
        build_campaign(connection)
        yield connection


def row(frame: pd.DataFrame, touch: int = 0, channel: str = "all", variant: str = "all") -> pd.Series:
    hit = frame[(frame["touch"] == touch) & (frame["channel"] == channel) & (frame["variant"] == variant)]
    assert len(hit) == 1, (touch, channel, variant, frame[["touch", "channel", "variant"]])
    return hit.iloc[0]


def test_whole_campaign_rates_follow_the_definitions(con):
    whole = row(rollup(con, LATER))
    assert (whole["queued"], whole["sent"], whole["delivered"], whole["failed"], whole["bounced"]) == (1, 6, 5, 1, 1)
    assert whole["delivery_rate"] == pytest.approx(5 / 6)
    assert (whole["emails_sent"], whole["emails_delivered"], whole["emails_bounced"]) == (5, 4, 1)
    assert whole["bounce_rate"] == pytest.approx(1 / 5)  # bounced emails / emails sent, WhatsApp left out
    assert whole["open_rate"] == pytest.approx(2 / 4)  # opened emails / delivered emails
    assert whole["click_rate"] == pytest.approx(1 / 4)  # leads who clicked / delivered emails
    assert whole["complaint_rate"] == pytest.approx(1 / 4)
    assert whole["read_rate"] == pytest.approx(1.0)  # WhatsApp read / WhatsApp delivered
    assert whole["leads_reached"] == 4  # L1, L2, L4, L6: L3 bounced, L5 failed
    assert whole["replied"] == 2  # L1 and L2 (twice, one lead); L4 only asked to stop
    assert whole["reply_rate"] == pytest.approx(2 / 4)  # leads who replied / leads reached
    assert whole["replied_to_cta"] == 1 and whole["reply_to_cta_rate"] == pytest.approx(1 / 2)  # of the replies
    assert whole["opted_out"] == 1 and whole["opt_out_rate"] == pytest.approx(1 / 4)
    assert whole["converted"] == 2 and whole["conversion_rate"] == pytest.approx(2 / 4)  # L1's CTA, L2's recorded conversion
    # L1 answered after 2 h, L2's first reply came 4 h after step 1 (their later reply does not count)
    assert whole["response_median_s"] == pytest.approx(3 * 3600)
    assert whole["response_p90_s"] == pytest.approx(2 * 3600 + 0.9 * 2 * 3600)


def test_cost_is_exact_decimal_per_campaign_reply_and_conversion(con):
    refresh_campaign_metrics(con, LATER)
    cost, per_reply, per_conversion = con.execute(
        "SELECT cost_usd, cost_per_reply_usd, cost_per_conversion_usd FROM campaign_metrics WHERE campaign_id = 'c1' AND touch = 0").fetchall()[0]
    # sends 4 x 0.01 + 0.05 + 0.01 (step 2), drafts 8 x 0.002, research 6 x 0.10
    assert cost == Decimal("0.716000")
    assert per_reply == Decimal("0.358000") and per_conversion == Decimal("0.358000")
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'campaign_metrics'").fetchall())
    assert types["cost_usd"].startswith("DECIMAL") and types["cost_per_reply_usd"].startswith("DECIMAL")


def test_per_touch_channel_and_variant(con):
    frame = rollup(con, LATER)
    second = row(frame, touch=2)
    assert (second["sent"], second["queued"], second["leads_reached"], second["replied"]) == (1, 1, 1, 1)
    assert second["reply_to_cta_rate"] == 0.0 and second["conversion_rate"] == 1.0  # the conversion counts for L2's last send before it
    assert second["response_median_s"] == pytest.approx(10 * 3600)
    first = row(frame, touch=1)
    assert (first["leads_reached"], first["replied"], first["replied_to_cta"], first["converted"]) == (4, 2, 1, 1)

    whatsapp = row(frame, channel="whatsapp")
    assert (whatsapp["sent"], whatsapp["failed"], whatsapp["read"], whatsapp["leads_reached"]) == (1, 1, 1, 1)
    assert whatsapp["reply_rate"] == 0.0 and whatsapp["opt_out_rate"] == 1.0
    assert whatsapp["cost_usd"] == pytest.approx(0.05 + 2 * 0.002)
    email = row(frame, channel="email")
    assert email["bounce_rate"] == pytest.approx(1 / 5) and email["reply_rate"] == pytest.approx(2 / 3)

    a, b = row(frame, touch=1, variant="A"), row(frame, touch=1, variant="B")
    assert (a["sent"], a["leads_reached"], a["replied"], a["reply_rate"]) == (2, 1, 1, 1.0)
    assert (b["sent"], b["leads_reached"], b["replied"], b["opted_out"]) == (3, 3, 1, 1)
    assert set(frame[frame["touch"] == 2]["variant"]) == {"all"}  # step 2 has no variants: no variant rows


def test_zero_denominators_give_null(con):
    frame = rollup(con, LATER)
    whatsapp = row(frame, channel="whatsapp")
    for rate in ("open_rate", "click_rate", "bounce_rate", "complaint_rate"):  # no email went by WhatsApp
        assert pd.isna(whatsapp[rate]), rate
    second = row(frame, touch=2)
    assert pd.isna(second["read_rate"])  # no WhatsApp in step 2
    a = row(frame, touch=1, variant="A")
    assert pd.isna(a["cost_per_conversion_usd"]) is False  # L1's accepted CTA is a conversion
    # A campaign step where nobody was reached: reply, opt-out and conversion rates have no denominator.
    only_failed = row(rollup(con, DAY1 + timedelta(minutes=1)), channel="whatsapp")  # sent, nothing delivered yet
    assert only_failed["leads_reached"] == 0
    assert pd.isna(only_failed["reply_rate"]) and pd.isna(only_failed["opt_out_rate"]) and pd.isna(only_failed["conversion_rate"])
    assert pd.isna(only_failed["reply_to_cta_rate"]) and pd.isna(only_failed["cost_per_reply_usd"])


def test_counts_as_of_a_moment(con):
    end_of_day1 = row(rollup(con, datetime.combine(DAY1.date() + timedelta(days=1), datetime.min.time())))
    assert (end_of_day1["sent"], end_of_day1["queued"], end_of_day1["replied"], end_of_day1["converted"]) == (5, 0, 2, 1)
    assert end_of_day1["cost_usd"] == pytest.approx(0.04 + 0.05 + 6 * 0.002 + 0.6)


def test_daily_rollup_is_idempotent_and_kept_as_history(con):
    first = refresh_daily_metrics(con, DAY1.date(), LATER)
    again = refresh_daily_metrics(con, DAY1.date(), LATER + timedelta(days=5))  # a past day, recomputed later, is the same day
    pd.testing.assert_frame_equal(first.reset_index(drop=True), again.reset_index(drop=True))
    refresh_daily_metrics(con, DAY2.date(), LATER)
    stored = con.execute("SELECT * FROM metrics_daily ORDER BY ALL").df()
    refresh_daily_metrics(con, DAY1.date(), LATER)
    pd.testing.assert_frame_equal(stored, con.execute("SELECT * FROM metrics_daily ORDER BY ALL").df())
    history = daily_metrics(con, "c1")
    assert [d.date() for d in history["day"]] == [DAY1.date(), DAY2.date()]
    assert list(history["sent"]) == [5, 6]  # cumulative as of each day's end
    # Today (the day not over) counts up to now.
    partial = refresh_daily_metrics(con, DAY2.date(), DAY2 + timedelta(minutes=1))
    assert row(partial)["sent"] == 6 and row(partial)["replied"] == 2


def test_a_conversion_recorded_twice_counts_once(con):
    assert record_conversion(con, "conv-1", "c1", "L2", "meeting_booked", DAY2, "crm", DAY2) is False
    assert con.execute("SELECT count(*) FROM conversions").fetchall()[0][0] == 1
    assert row(rollup(con, LATER))["converted"] == 2


def test_no_campaign_no_rows(tmp_path):
    with warehouse.connect(tmp_path / "empty.duckdb") as empty:
        assert rollup(empty, LATER).empty
        assert refresh_campaign_metrics(empty, LATER).empty
        assert refresh_daily_metrics(empty, date(2026, 3, 2), LATER).empty
