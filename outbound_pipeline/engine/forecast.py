"""Forecast before launch: leads reached per channel, messages per step, days to finish under the windows and limits, and cost.

Every figure comes from what is known before anything is sent: the audience the campaign's segment
selects, the channels each lead has an address for, the steps' delays, the sending window and the
sending limits (`domain.limits`). How many leads go on to the next step comes from the history of
earlier campaigns (their reply, opt-out and bounce rates); without history everyone is assumed to go
on, so the forecast is an upper bound, and it says so. Costs are the average paid per message,
research and draft in earlier campaigns, else the providers' list prices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from outbound_pipeline.domain.limits import OrgLimits, channel_rates
from outbound_pipeline.domain.spec import CampaignSpec

ADDRESS = {"email": "email", "whatsapp": "phone", "sms": "phone"}


@dataclass(frozen=True)
class Forecast:
    campaign_id: str
    audience: int
    unreachable: int  # leads with no address on any of the first step's channels
    reached_by_channel: dict[str, int]
    steps: pd.DataFrame  # step, delay, channel, messages, sending_days
    messages: float
    days_to_finish: float
    finish_by: datetime
    cost_usd: float
    cost_breakdown: dict[str, float]
    assumptions: list[str] = field(default_factory=list)


def first_channel(lead: Mapping[Any, object], channels: list[str]) -> str | None:
    """The first of the step's channels the lead has an address for (as dispatch picks it)."""
    for channel in channels:
        value = lead.get(ADDRESS[channel])
        if isinstance(value, str) and value.strip():
            return channel
    return None


def sending_days(messages: float, per_second: float, spec: CampaignSpec, daily_limit: int | None) -> float:
    """Calendar days to hand `messages` over at `per_second` inside the window, under the daily limit."""
    if messages <= 0:
        return 0.0
    window = spec.sending_window
    open_seconds = (datetime.combine(datetime.min, window.end) - datetime.combine(datetime.min, window.start)).total_seconds()
    per_day = per_second * open_seconds
    if daily_limit is not None:
        per_day = min(per_day, daily_limit)
    open_days = messages / per_day if per_day > 0 else math.inf
    return open_days * 7 / len(window.days)  # closed days of the week stretch the calendar


def forecast(spec: CampaignSpec, audience: pd.DataFrame, start: datetime, limits: OrgLimits,
             continuation: float | None, unit_costs: Mapping[str, float]) -> Forecast:
    """The forecast for `spec` over `audience` (rows with email and phone), launched at `start`.

    continuation: the share of leads reached by a step who go on to the next (None: no history, everyone);
    unit_costs: cost per message per channel, and `research` per lead and `draft` per message.
    """
    assumptions = []
    if continuation is None:
        continuation = 1.0
        assumptions.append("no earlier campaign to learn from: every lead is assumed to go on to every step (an upper bound)")
    rates = channel_rates(spec, limits)
    leads = audience.to_dict("records")
    rows, delay_total, send_total, messages_total = [], timedelta(), 0.0, 0.0
    cost = {"research": unit_costs.get("research", 0.0) * len(leads), "composing": 0.0, "sending": 0.0}
    reached: dict[str, int] = {}
    unreachable = 0
    for index, (name, step) in enumerate(zip(spec.step_names, spec.steps, strict=True)):
        chosen = [first_channel(lead, list(step.channels)) for lead in leads]
        counts = pd.Series([c for c in chosen if c is not None], dtype="string").value_counts().to_dict()
        if index == 0:
            reached = {str(k): int(v) for k, v in counts.items()}
            unreachable = sum(c is None for c in chosen)
        share = continuation ** index
        delay_total += step.delay_timedelta()
        step_days = 0.0
        for channel, count in counts.items():
            messages = count * share
            days = sending_days(messages, rates.get(str(channel), 1.0), spec, limits.daily)
            step_days = max(step_days, days)
            messages_total += messages
            cost["sending"] += messages * unit_costs.get(str(channel), 0.0)
            cost["composing"] += messages * unit_costs.get("draft", 0.0)
            rows.append({"step": name, "delay": step.delay, "channel": str(channel), "messages": round(messages, 1), "sending_days": round(days, 2)})
        send_total += step_days
    days_to_finish = delay_total.total_seconds() / 86400 + send_total
    if any(s.delay_parts[1] == "bd" for s in spec.steps):
        assumptions.append("business-day delays are counted as calendar days")
    return Forecast(campaign_id=spec.name, audience=len(leads), unreachable=unreachable, reached_by_channel=reached,
                    steps=pd.DataFrame(rows, columns=["step", "delay", "channel", "messages", "sending_days"]), messages=messages_total,
                    days_to_finish=days_to_finish, finish_by=start + timedelta(days=days_to_finish),
                    cost_usd=sum(cost.values()), cost_breakdown=cost, assumptions=assumptions)
