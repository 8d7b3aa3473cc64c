"""Admission: which of a run's pending messages the sending limits let go now (`domain.limits` has the rules)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from outbound_pipeline.domain.limits import (
    TIER_WINDOW_HOURS,
    WEEKLY_WINDOW_DAYS,
    OrgLimits,
    channel_budget,
    channel_rates,
    weekly_cap,
    whatsapp_tier,
    within,
)
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.store import sends as store


def admit(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, spec: CampaignSpec, now: datetime,
          limits: OrgLimits | None = None) -> tuple[pd.Series, dict[str, int]]:
    """Which of `rows` (pending sends, in send order) may go now, and how many each limit held back."""
    limits = limits or OrgLimits.from_env()
    held: dict[str, int] = {}
    mask = pd.Series(True, index=rows.index)
    if rows.empty:
        return mask, held

    def apply(name: str, new_mask: pd.Series) -> pd.Series:
        held[name] = int((mask & ~new_mask).sum())
        return new_mask

    if limits.weekly_per_lead is not None:
        recent = store.sent_per_lead_since(con, rows["lead_id"], now - timedelta(days=WEEKLY_WINDOW_DAYS))
        mask = apply("weekly_cap_per_lead", weekly_cap(mask, rows["lead_id"], recent, limits.weekly_per_lead))
    mask = apply("channel_rate", channel_budget(mask, rows["channel"], channel_rates(spec, limits), limits.dispatch_seconds))
    if limits.whatsapp_tier is not None and (rows["channel"] == "whatsapp").any():
        since = now - timedelta(hours=TIER_WINDOW_HOURS)
        reached = store.whatsapp_numbers_opened(con, since)
        inbound = store.whatsapp_numbers_inbound(con, since, now)
        mask = apply("whatsapp_tier", whatsapp_tier(mask, rows["channel"], rows["to_address"], reached, inbound, limits.whatsapp_tier))
    sent_today, in_flight = store.usage(con, spec.name, now.replace(hour=0, minute=0, second=0, microsecond=0))
    if spec.limits.max_in_flight is not None:
        mask = apply("max_in_flight", within(mask, spec.limits.max_in_flight - in_flight))
    if limits.daily is not None:
        mask = apply("daily", within(mask, limits.daily - sent_today))
    return mask, {k: v for k, v in held.items() if v}
