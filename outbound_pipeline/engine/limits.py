"""Sending limits: which pending messages may go now. Held messages stay `pending` for a later run.

Limits compose, and the smallest wins for every message:
- per channel messages per second (`channel_rates`): admitted here as a budget per dispatch run
  (rate x `OUTBOUND_DISPATCH_SECONDS`, the time between cadence runs), then paced at that rate while
  the run sends (`pacing.py`); the campaign's `limits.per_second` can only lower it;
- per campaign maximum in flight (`limits.max_in_flight`): sends handed over with no outcome yet;
- organisation-wide messages per UTC day (`OUTBOUND_DAILY_LIMIT`);
- WhatsApp messaging tier (`OUTBOUND_WHATSAPP_TIER`: 250, 2000, 10000, 100000 or unlimited): unique
  recipients reached outside their 24-hour service window per rolling 24 hours;
- frequency cap per lead across all campaigns per rolling 7 days (`OUTBOUND_WEEKLY_CAP_PER_LEAD`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from outbound_pipeline.domain.spec import CampaignSpec

TIERS = {"250": 250, "2000": 2000, "10000": 10000, "100000": 100000, "unlimited": None}
DEFAULT_PER_SECOND = {"email": 2.0, "whatsapp": 10.0, "sms": 1.0}


@dataclass(frozen=True)
class OrgLimits:
    """Organisation-wide limits, read from the environment (see the module docstring)."""

    daily: int | None = 10000
    whatsapp_tier: int | None = 2000
    weekly_per_lead: int | None = 5
    per_second: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PER_SECOND))
    dispatch_seconds: int = 900

    @classmethod
    def from_env(cls) -> OrgLimits:
        def number(name: str, default: int | None) -> int | None:
            raw = os.environ.get(name, "").strip().lower()
            if not raw:
                return default
            if raw in ("none", "unlimited"):
                return None
            if not raw.isdigit():
                raise ValueError(f"{name}={raw!r} must be a whole number or 'unlimited'")
            return int(raw)

        tier = os.environ.get("OUTBOUND_WHATSAPP_TIER", "2000").strip().lower().replace(",", "")
        if tier not in TIERS:
            raise ValueError(f"OUTBOUND_WHATSAPP_TIER={tier!r} must be one of {', '.join(TIERS)}")
        rates = dict(DEFAULT_PER_SECOND)
        for channel in rates:
            raw = os.environ.get(f"OUTBOUND_RATE_{channel.upper()}")
            if raw:
                rates[channel] = float(raw)
        return cls(daily=number("OUTBOUND_DAILY_LIMIT", 10000), whatsapp_tier=TIERS[tier],
                   weekly_per_lead=number("OUTBOUND_WEEKLY_CAP_PER_LEAD", 5), per_second=rates,
                   dispatch_seconds=number("OUTBOUND_DISPATCH_SECONDS", 900) or 900)



def channel_rates(spec: CampaignSpec, limits: OrgLimits) -> dict[str, float]:
    """Messages per second per channel for a campaign: the organisation's rate, lowered by the campaign's own."""
    rates = dict(limits.per_second)
    for ch, rate in spec.limits.per_second.items():
        rates[ch] = min(rates.get(ch, float("inf")), rate)
    return rates


USAGE_SQL = """
SELECT
  (SELECT count(*) FROM sends WHERE status IN ('sent', 'sending') AND coalesce(sent_at, updated_at) >= $day_start) AS sent_today,
  (SELECT count(*) FROM sends s WHERE s.campaign_id = $campaign
     AND (s.status = 'sending' OR (s.status = 'sent' AND NOT EXISTS (
          SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id
          AND e.event_type IN ('delivered', 'opened', 'read', 'clicked', 'bounced', 'failed', 'undelivered'))))) AS in_flight
"""

# WhatsApp business-initiated conversations in the last 24 h: sends to numbers with no inbound message in the 24 h before.
TIER_SQL = """
SELECT DISTINCT s.to_address FROM sends s
WHERE s.channel = 'whatsapp' AND s.status IN ('sent', 'sending') AND coalesce(s.sent_at, s.updated_at) > $since
  AND NOT EXISTS (SELECT 1 FROM replies p WHERE p.channel = 'whatsapp' AND p.from_address = s.to_address
                  AND p.received_at <= coalesce(s.sent_at, s.updated_at) AND p.received_at > coalesce(s.sent_at, s.updated_at) - INTERVAL 24 HOUR)
"""


def _within(mask: pd.Series, group: pd.Series | None, budget: float | None) -> pd.Series:
    """Keep, among `mask` rows in order, the first `budget` (per group when given)."""
    if budget is None:
        return mask
    rank = mask.astype(int).groupby(group if group is not None else pd.Series(0, index=mask.index)).cumsum()
    return mask & (rank <= max(int(budget), 0))


def admit(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, spec: CampaignSpec, now: datetime,
          limits: OrgLimits | None = None) -> tuple[pd.Series, dict[str, int]]:
    """Which of `rows` (pending sends, in send order) may go now, and how many each limit held back."""
    limits = limits or OrgLimits.from_env()
    held: dict[str, int] = {}
    if rows.empty:
        return pd.Series(True, index=rows.index), held

    def apply(name: str, new_mask: pd.Series) -> pd.Series:
        held[name] = int((mask & ~new_mask).sum())
        return new_mask

    mask = pd.Series(True, index=rows.index)
    # Frequency cap: messages each lead got in the last 7 days, across campaigns.
    if limits.weekly_per_lead is not None:
        con.register("_admit_leads", rows[["lead_id"]].drop_duplicates())
        recent = dict(con.execute("""
            SELECT s.lead_id, count(*) FROM sends s JOIN _admit_leads USING (lead_id)
            WHERE s.status IN ('sent', 'sending') AND coalesce(s.sent_at, s.updated_at) > ? GROUP BY s.lead_id
        """, [now - timedelta(days=7)]).fetchall())
        con.unregister("_admit_leads")
        room = limits.weekly_per_lead - rows["lead_id"].map(recent).fillna(0)
        rank = mask.astype(int).groupby(rows["lead_id"]).cumsum()
        mask = apply("weekly_cap_per_lead", mask & (rank <= room))
    # Per channel rate, as a budget for this run (the run then paces its sends at the same rate).
    budgets = {ch: rate * limits.dispatch_seconds for ch, rate in channel_rates(spec, limits).items()}
    rank = mask.astype(int).groupby(rows["channel"]).cumsum()
    mask = apply("channel_rate", mask & (rank <= rows["channel"].map(budgets).fillna(float("inf"))))
    # WhatsApp tier: each new number reached outside its service window uses one slot for 24 h.
    if limits.whatsapp_tier is not None and (rows["channel"] == "whatsapp").any():
        reached = {r[0] for r in con.execute(TIER_SQL, {"since": now - timedelta(hours=24)}).fetchall()}
        inbound = {r[0] for r in con.execute("""SELECT DISTINCT from_address FROM replies WHERE channel = 'whatsapp'
                                                 AND received_at > ? AND received_at <= ?""", [now - timedelta(hours=24), now]).fetchall()}
        new_number = (rows["channel"] == "whatsapp") & ~rows["to_address"].isin(reached | inbound)
        first = ~rows["to_address"].duplicated()
        slot = (mask & new_number & first).astype(int).cumsum()
        over = new_number & (slot > limits.whatsapp_tier - len(reached))
        # a number already given a slot in this run rides on it; only fresh numbers past the tier wait
        over_numbers = set(rows.loc[over & first, "to_address"])
        mask = apply("whatsapp_tier", mask & ~(new_number & rows["to_address"].isin(over_numbers)))
    usage = con.execute(USAGE_SQL, {"day_start": now.replace(hour=0, minute=0, second=0, microsecond=0), "campaign": spec.name}).fetchall()[0]
    if spec.limits.max_in_flight is not None:
        mask = apply("max_in_flight", _within(mask, None, spec.limits.max_in_flight - usage[1]))
    if limits.daily is not None:
        mask = apply("daily", _within(mask, None, limits.daily - usage[0]))
    return mask, {k: v for k, v in held.items() if v}
