"""Who is due for which touch: the rule every stage and schedule shares.

A lead's position is its latest draft. From there the step's successors (its branches, or the
following step) are tried in order against what happened to that step's message: the first
whose condition holds is the next step, due once its delay has passed. A reply ends the
sequence unless a `replied_intent` branch catches it.

Pure rules over one frame of lead states per campaign (`store.routing.lead_states`: statuses,
current step, its decision and send, what the send's events say, the latest reply).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from outbound_pipeline.domain.outbox import SENDABLE_DECISIONS
from outbound_pipeline.domain.spec import CampaignSpec, Condition, parse_delay


def minus_business_days(moment: datetime, days: int) -> datetime:
    """The instant `days` business days (Mon-Fri) before `moment`."""
    while days > 0:
        moment -= timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def sent_before_cutoff(spec: CampaignSpec, touch: int, now: datetime) -> datetime:
    """A previous touch sent at or before this instant makes touch `touch` due now."""
    amount, unit = spec.step(touch).delay_parts
    if unit == "bd":
        return minus_business_days(now, amount)
    return now - spec.step(touch).delay_timedelta()


def duration(text: str) -> timedelta:
    """'2h' -> 2 hours; business days count as calendar days here."""
    amount, unit = parse_delay(text)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount)}.get(unit, timedelta(days=amount))


def with_requeued(states: pd.DataFrame, planned: pd.DataFrame) -> pd.DataFrame:
    """Lead states with the sends due for a retry (`planned`: send_id, status, retries, updated_at) as they will be once
    re-queued: a message going out again keeps its lead waiting, whether or not its touch run has re-queued it yet."""
    if planned.empty:
        return states
    by_send = planned.set_index("send_id")
    hit = states["send_id"].isin(by_send.index)
    out = states.copy()
    for column, planned_column in (("send_status", "status"), ("retries", "retries"), ("send_updated_at", "updated_at")):
        out[column] = out["send_id"].map(by_send[planned_column]).where(hit, out[column])
    out["retries"] = out["retries"].astype("int64")
    return out


def describe(cond: Condition | None) -> str:
    if cond is None:
        return "next"
    if cond.replied_intent:
        return "replied:" + "|".join(cond.replied_intent)
    return "+".join(k for k in ("opened_no_reply", "not_delivered", "no_reply") if getattr(cond, k))


def _holds(cond: Condition | None, s: pd.DataFrame, failed: pd.Series) -> pd.Series:
    """Rows of `s` (lead states) for which the condition holds."""
    replied_ever = s["replied_at"].notna()
    if cond is None:
        return ~failed & ~replied_ever
    if cond.replied_intent:
        replied_now = replied_ever & (s["replied_at"] >= s["sent_at"].fillna(s["send_updated_at"]))
        wanted = set(cond.replied_intent)
        return replied_now & (s["reply_intent"].isin(wanted) | ("any" in wanted))
    mask = ~replied_ever
    if cond.opened_no_reply:
        mask &= s["engaged"] & ~failed
    if cond.no_reply:
        mask &= ~failed
    if cond.not_delivered:
        mask &= (failed | s["undelivered"]) & ~s["delivered"]
    return mask


def _place(out: pd.DataFrame, mask: pd.Series, state: str, touch: int, via: str) -> None:
    """Set the rows of `mask` to `state` for step `touch`, reached by `via`."""
    out.loc[mask, "state"] = state
    out.loc[mask, "touch"] = touch
    out.loc[mask, "via"] = via


def route(states: pd.DataFrame, spec: CampaignSpec, now: datetime) -> pd.DataFrame:
    """Per lead: `state` (due | waiting | finished), the next `touch`, `via` (why) and `seq` (path position)."""
    n = len(states)
    out = pd.DataFrame({"lead_id": states["lead_id"], "state": "finished", "touch": pd.array([pd.NA] * n, dtype="Int64"),
                        "via": None, "seq": states["seq"].astype(int) + 1}, index=states.index)
    if n == 0:
        return out
    reachable = (states["lead_status"] == "active") & states["recipient_status"].isin(["active", "replied"])
    fresh = states["touch"].isna()
    entry = fresh & reachable & (states["recipient_status"] == "active")
    _place(out, entry, "due", 1, "entry")

    started = ~fresh & reachable
    unsent = states["decision"].isna() | (states["decision"].isin(SENDABLE_DECISIONS)
                                           & ~states["send_status"].isin(["sent", "failed", "suppressed"]))
    retry_left = (states["send_status"] == "failed") & (states["retries"] < spec.retry_attempts)
    out.loc[started & (unsent | retry_left), "state"] = "waiting"
    failed = states["send_status"] == "failed"
    resolved = started & ~unsent & ~retry_left & states["send_status"].isin(["sent", "failed"])
    base = states["sent_at"].where(~failed, states["send_updated_at"])

    for touch in states.loc[resolved, "touch"].astype(int).unique():
        rows = resolved & (states["touch"] == touch)
        taken = pd.Series(False, index=states.index)
        successors = spec.successors(int(touch))
        for cond, target in successors:
            hit = rows & ~taken & _holds(cond, states, failed)
            taken |= hit
            start = states["replied_at"] if cond is not None and cond.replied_intent else base
            ready = start <= sent_before_cutoff(spec, target, now)
            _place(out, hit & ready, "due", target, describe(cond))
            _place(out, hit & ~ready, "waiting", target, describe(cond))
        # Nothing matched yet: an open, a bounce or a reply may still arrive until the longest delay has passed.
        if successors:
            latest = min(sent_before_cutoff(spec, t, now) for _, t in successors)
            undecided = rows & ~taken & (base > latest) & states["replied_at"].isna()
            out.loc[undecided, "state"] = "waiting"
    return out


def assign_variants(campaign_id: str, step: str, lead_ids: pd.Series, variants: list) -> pd.Series:
    """Deterministic A/B assignment: a hash of (campaign, step, lead) in [0, 1) split by the variants' weights."""
    if not variants:
        return pd.Series([None] * len(lead_ids), index=lead_ids.index, dtype=object)
    u = lead_ids.astype(str).map(lambda lead: int.from_bytes(hashlib.sha256(f"{campaign_id}\x1f{step}\x1f{lead}".encode()).digest()[:8], "big") / 2**64)
    weights = np.array([v.weight for v in variants], dtype=float)
    edges = np.cumsum(weights) / weights.sum()
    index = np.minimum(np.searchsorted(edges, u.to_numpy(), side="right"), len(variants) - 1)
    return pd.Series([variants[i].name for i in index], index=lead_ids.index, dtype=object)
