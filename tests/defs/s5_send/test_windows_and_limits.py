"""Sending windows across zones, and limits that hold messages back rather than drop them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from outbound_pipeline.domain.limits import OrgLimits
from outbound_pipeline.domain.loader import parse_campaign
from outbound_pipeline.domain.spec import SendingWindow
from outbound_pipeline.domain.windows import open_mask
from outbound_pipeline.engine.limits import admit
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.warehouse import insert_new

SPEC = parse_campaign("""
name: tiered
goal: Book a call with operations leaders
type: drip
audience: {lead_list: a.csv}
steps: [{name: intro, intent: introduce, channels: [whatsapp]}]
""")


def test_window_is_local_to_each_lead_tokyo_and_new_york_at_the_same_instant():
    window = SendingWindow()  # 08:00-21:00, Monday to Friday
    zones = pd.Series(["Asia/Tokyo", "America/New_York", None])
    # Tuesday 2026-01-06 00:30 UTC: 09:30 Tuesday in Tokyo, 19:30 Monday in New York, 00:30 in UTC (the default zone).
    assert open_mask(window, zones, datetime(2026, 1, 6, 0, 30)).tolist() == [True, True, False]
    # Tuesday 13:00 UTC: 22:00 in Tokyo (closed), 08:00 in New York (open).
    assert open_mask(window, zones, datetime(2026, 1, 6, 13, 0)).tolist() == [False, True, True]
    # Saturday 2026-01-10 15:00 UTC: closed everywhere; those leads wait for Monday.
    assert not open_mask(window, zones, datetime(2026, 1, 10, 15, 0)).any()


def _pending(n: int) -> pd.DataFrame:
    return pd.DataFrame({"send_id": [f"snd_{i:04d}" for i in range(n)], "lead_id": [f"lead_{i:04d}" for i in range(n)],
                         "channel": "whatsapp", "to_address": [f"+1415555{i:04d}" for i in range(n)], "campaign_id": "tiered"})


def _mark_sent(con, rows: pd.DataFrame, at: datetime) -> None:
    insert_new(con, "sends", rows.assign(
        draft_id=rows["send_id"].str.replace("snd_", "drf_"), touch=1, body="hi", status="sent", provider="offline",
        cost_usd=0.0, attempts=1, recorded_at=at, sent_at=at, updated_at=at))


def test_whatsapp_tier_holds_the_excess_until_the_rolling_day_frees_it(tmp_path):
    limits = OrgLimits(whatsapp_tier=250, daily=None, weekly_per_lead=None)
    monday = datetime(2026, 1, 5, 9, 0)
    rows = _pending(300)
    with warehouse.connect(tmp_path / "t.duckdb") as con:
        mask, held = admit(con, rows, SPEC, monday, limits)
        assert mask.sum() == 250 and held == {"whatsapp_tier": 50}
        _mark_sent(con, rows[mask], monday)
        rest = rows[~mask]
        later_today = admit(con, rest, SPEC, monday + timedelta(hours=6), limits)[0]
        assert later_today.sum() == 0  # the tier is used up for 24 hours
        next_day = admit(con, rest, SPEC, monday + timedelta(hours=24, minutes=1), limits)[0]
        assert next_day.sum() == 50  # the excess goes the next day, none of it was dropped


def test_limits_compose_and_the_smallest_wins(tmp_path):
    spec = SPEC.model_copy(update={"limits": SPEC.limits.model_copy(update={"max_in_flight": 40})})
    rows = _pending(100)
    now = datetime(2026, 1, 5, 9, 0)
    with warehouse.connect(tmp_path / "t.duckdb") as con:
        assert admit(con, rows, spec, now, OrgLimits(whatsapp_tier=None, daily=60, weekly_per_lead=None))[0].sum() == 40
        assert admit(con, rows, spec, now, OrgLimits(whatsapp_tier=None, daily=25, weekly_per_lead=None))[0].sum() == 25
        slow = OrgLimits(whatsapp_tier=None, daily=None, weekly_per_lead=None, per_second={"whatsapp": 0.01}, dispatch_seconds=900)
        assert admit(con, rows, spec, now, slow)[0].sum() == 9  # 0.01/s over a 900 s run
        # Frequency cap: a lead who already had 2 messages this week gets no third with a cap of 2.
        _mark_sent(con, _pending(3).assign(send_id=["old_1", "old_2", "old_3"], lead_id=["lead_0000", "lead_0000", "lead_0001"]),
                   now - timedelta(days=2))
        mask, held = admit(con, rows.head(5), spec, now, OrgLimits(whatsapp_tier=None, daily=None, weekly_per_lead=2))
        assert mask.tolist() == [False, True, True, True, True] and held == {"weekly_cap_per_lead": 1}


def test_limit_settings_are_validated(monkeypatch):
    monkeypatch.setenv("OUTBOUND_WHATSAPP_TIER", "500")
    with pytest.raises(ValueError, match="OUTBOUND_WHATSAPP_TIER='500' must be one of 250, 2000"):
        OrgLimits.from_env()
    monkeypatch.setenv("OUTBOUND_WHATSAPP_TIER", "unlimited")
    monkeypatch.setenv("OUTBOUND_DAILY_LIMIT", "1000")
    assert OrgLimits.from_env().whatsapp_tier is None and OrgLimits.from_env().daily == 1000
