"""A voice campaign's calls cost money too: its whole-campaign row in `campaign_metrics` carries them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from outbound_pipeline.defs.s8_metrics.assets import campaign_metrics
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import cost_breakdown, refresh_campaign_metrics, rollup
from tests.store.metrics_fixtures import DAY1, DAY2, build_campaign, insert

LATER = DAY2 + timedelta(days=3)


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "m.duckdb") as connection:
        build_campaign(connection)  # `c1`: the hand-built email and WhatsApp campaign, 0.716 in all
        insert(connection, "research_snippets", campaign_id="v1", lead_id="V1", snippet_id="sn1", rank=1, cost_usd=0.1,
               retrieved_at=DAY1 - timedelta(hours=1))
        for n, (status, cost, at) in enumerate((("completed", 0.13, DAY1), ("voicemail", 0.026, DAY1 + timedelta(hours=1)),
                                                ("failed", None, DAY1 + timedelta(hours=2)), ("completed", 0.5, DAY2))):
            insert(connection, "calls", call_id=f"call{n}", campaign_id="v1", lead_id=f"V{n}", attempt=1, provider="offline",
                   from_number="+15550000000", to_number=f"+1555000000{n}", status=status, placed_at=at, cost_usd=cost, updated_at=at)
        yield connection


def test_a_voice_campaign_has_its_row_with_its_call_cost(con):
    frame = refresh_campaign_metrics(con, LATER)
    voice = frame[frame["campaign_id"] == "v1"]
    assert voice["touch"].tolist() == [0]  # no steps: the whole-campaign row only
    row = voice.iloc[0]
    assert row["cost_usd"] == pytest.approx(0.756)  # calls 0.13 + 0.026 + 0.5 (the failed one billed nothing), research 0.10
    assert (row["sent"], row["delivered"], row["replied"], row["answers_sent"]) == (0, 0, 0, 0)
    assert row["reply_rate"] is None or row["reply_rate"] != row["reply_rate"]  # no lead reached: NULL, not 0
    assert con.execute("SELECT cost_usd FROM campaign_metrics WHERE campaign_id = 'v1' AND touch = 0").fetchall() == [(Decimal("0.756000"),)]
    # the other campaign's numbers are untouched
    assert con.execute("SELECT cost_usd FROM campaign_metrics WHERE campaign_id = 'c1' AND touch = 0").fetchall() == [(Decimal("0.716000"),)]


def test_calls_count_as_of_the_cutoff(con):
    day1 = rollup(con, DAY1 + timedelta(hours=12))
    voice = day1[day1["campaign_id"] == "v1"]
    assert voice["cost_usd"].tolist() == [pytest.approx(0.256)]  # the call of day 2 not placed yet
    assert rollup(con, DAY1 - timedelta(days=1))["campaign_id"].tolist() == []  # before any call: no row
    breakdown = cost_breakdown(con, "v1", LATER)
    assert breakdown["calls"] == Decimal("0.656000") and breakdown["total"] == Decimal("0.756000")
    assert "calls" not in cost_breakdown(con, "c1", LATER)  # a campaign without calls shows no call item


def test_the_rollup_names_the_calls_table_it_reads():
    assert any(key.path == ["calls"] for key in campaign_metrics.dependency_keys)
