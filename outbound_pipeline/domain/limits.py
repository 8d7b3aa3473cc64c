"""Sending limits: which pending messages may go now. Held messages stay `pending` for a later run.

Limits compose, and the smallest wins for every message:
- per channel messages per second (`channel_rates`): admitted as a budget per dispatch run
  (rate x `OUTBOUND_DISPATCH_SECONDS`, the time between cadence runs), then paced at that rate while
  the run sends (`engine.pacing`); the campaign's `limits.per_second` can only lower it;
- per campaign maximum in flight (`limits.max_in_flight`): sends handed over with no outcome yet;
- organisation-wide messages per UTC day (`OUTBOUND_DAILY_LIMIT`);
- WhatsApp messaging tier (`OUTBOUND_WHATSAPP_TIER`: 250, 2000, 10000, 100000 or unlimited): unique
  recipients reached outside their 24-hour service window per rolling 24 hours;
- frequency cap per lead across all campaigns per rolling 7 days (`OUTBOUND_WEEKLY_CAP_PER_LEAD`).

The masks here take what the database says about usage as plain values; `engine.limits.admit` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from outbound_pipeline.domain.spec import CampaignSpec

TIERS = {"250": 250, "2000": 2000, "10000": 10000, "100000": 100000, "unlimited": None}
DEFAULT_PER_SECOND = {"email": 2.0, "whatsapp": 10.0, "sms": 1.0}
WEEKLY_WINDOW_DAYS = 7
TIER_WINDOW_HOURS = 24


@dataclass(frozen=True)
class OrgLimits:
    """Organisation-wide limits, read from the environment (see the module docstring)."""

    daily: int | None = 10000
    whatsapp_tier: int | None = 2000
    weekly_per_lead: int | None = 5
    per_second: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PER_SECOND))
    dispatch_seconds: int = 900

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrgLimits:
        env = os.environ if environ is None else environ

        def number(name: str, default: int | None) -> int | None:
            raw = env.get(name, "").strip().lower()
            if not raw:
                return default
            if raw in ("none", "unlimited"):
                return None
            if not raw.isdigit():
                raise ValueError(f"{name}={raw!r} must be a whole number or 'unlimited'")
            return int(raw)

        tier = env.get("OUTBOUND_WHATSAPP_TIER", "2000").strip().lower().replace(",", "")
        if tier not in TIERS:
            raise ValueError(f"OUTBOUND_WHATSAPP_TIER={tier!r} must be one of {', '.join(TIERS)}")
        rates = dict(DEFAULT_PER_SECOND)
        for channel in rates:
            raw = env.get(f"OUTBOUND_RATE_{channel.upper()}")
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


def within(mask: pd.Series, budget: float | None) -> pd.Series:
    """Keep, among `mask` rows in order, the first `budget`."""
    if budget is None:
        return mask
    return mask & (mask.astype(int).cumsum() <= max(int(budget), 0))


def weekly_cap(mask: pd.Series, lead_ids: pd.Series, recent: Mapping[str, int], cap: int) -> pd.Series:
    """At most `cap` messages per lead in the rolling week, counting the `recent` ones already sent."""
    room = cap - lead_ids.map(recent).fillna(0)
    rank = mask.astype(int).groupby(lead_ids).cumsum()
    return mask & (rank <= room)


def channel_budget(mask: pd.Series, channels: pd.Series, rates: Mapping[str, float], seconds: int) -> pd.Series:
    """Per channel, at most rate x `seconds` messages in this run."""
    budgets = {ch: rate * seconds for ch, rate in rates.items()}
    rank = mask.astype(int).groupby(channels).cumsum()
    return mask & (rank <= channels.map(budgets).fillna(float("inf")))


def whatsapp_tier(mask: pd.Series, channels: pd.Series, numbers: pd.Series, reached: set[str], inbound: set[str], tier: int) -> pd.Series:
    """Each new number reached outside its service window uses one of the tier's slots for 24 hours.

    `reached`: numbers already given a slot in the last 24 hours; `inbound`: numbers whose window is open.
    A number already given a slot in this run rides on it; only fresh numbers past the tier wait.
    """
    new_number = (channels == "whatsapp") & ~numbers.isin(reached | inbound)
    first = ~numbers.duplicated()
    slot = (mask & new_number & first).astype(int).cumsum()
    over = new_number & (slot > tier - len(reached))
    over_numbers = set(numbers[over & first])
    return mask & ~(new_number & numbers.isin(over_numbers))
