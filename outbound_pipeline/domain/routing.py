"""Who is due for which touch: the rule every stage and schedule shares.

A lead's position is its latest draft. From there the step's successors (its branches, or the
following step) are tried in order against what happened to that step's message: the first
whose condition holds is the next step, due once its delay has passed. A reply ends the
sequence unless a `replied_intent` branch catches it. Everything here only reads.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from outbound_pipeline.domain.spec import CampaignSpec, Condition, parse_delay

STATES_SQL = """
WITH cur AS (
    SELECT lead_id, arg_max(touch, created_at) AS touch, count(*) AS seq
    FROM drafts WHERE campaign_id = $campaign AND touch > 0 GROUP BY lead_id  -- touch 0: answers to replies, not a step
), rep AS (
    SELECT lead_id, arg_max(intent, received_at) AS reply_intent, max(received_at) AS replied_at
    FROM replies WHERE campaign_id = $campaign AND intent <> 'opt_out' AND lead_id IS NOT NULL GROUP BY lead_id
), ev AS (
    SELECT send_id,
           bool_or(event_type IN ('delivered', 'opened', 'read', 'clicked')) AS delivered,
           bool_or(event_type IN ('opened', 'read', 'clicked')) AS opened,
           bool_or(event_type IN ('failed', 'undelivered', 'bounced')) AS undelivered
    FROM delivery_events WHERE campaign_id = $campaign GROUP BY send_id
)
SELECT r.lead_id, r.status AS recipient_status, l.status AS lead_status, cur.touch, coalesce(cur.seq, 0) AS seq,
       a.decision, s.status AS send_status, s.sent_at, s.updated_at AS send_updated_at, coalesce(s.retries, 0) AS retries,
       coalesce(ev.delivered, false) AS delivered, coalesce(ev.opened, false) AS opened,
       coalesce(ev.undelivered, false) AS undelivered, rep.reply_intent, rep.replied_at
FROM recipients r JOIN leads l USING (lead_id)
LEFT JOIN cur USING (lead_id)
LEFT JOIN rep USING (lead_id)
LEFT JOIN drafts d ON d.campaign_id = r.campaign_id AND d.lead_id = r.lead_id AND d.touch = cur.touch
LEFT JOIN approvals a ON a.draft_id = d.draft_id
LEFT JOIN sends s ON s.draft_id = d.draft_id
LEFT JOIN ev ON ev.send_id = s.send_id
WHERE r.campaign_id = $campaign
ORDER BY r.lead_id
"""


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


def lead_states(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """Per recipient: statuses, current step, what happened to its message, its latest reply."""
    return con.execute(STATES_SQL, {"campaign": campaign_id}).df()


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
        mask &= s["opened"] & ~failed
    if cond.no_reply:
        mask &= ~failed
    if cond.not_delivered:
        mask &= (failed | s["undelivered"]) & ~s["delivered"]
    return mask


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
    out.loc[entry, ["state", "touch", "via"]] = ["due", 1, "entry"]

    started = ~fresh & reachable
    unsent = states["decision"].isna() | (states["decision"].isin(["approved", "edited"])
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
            out.loc[hit & ready, ["state", "touch", "via"]] = ["due", target, describe(cond)]
            out.loc[hit & ~ready, ["state", "touch", "via"]] = ["waiting", target, describe(cond)]
        # Nothing matched yet: an open, a bounce or a reply may still arrive until the longest delay has passed.
        if successors:
            latest = min(sent_before_cutoff(spec, t, now) for _, t in successors)
            undecided = rows & ~taken & (base > latest) & states["replied_at"].isna()
            out.loc[undecided, "state"] = "waiting"
    return out


def campaign_route(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime) -> pd.DataFrame:
    """`route` over the campaign's recipients, read in one query."""
    return route(lead_states(con, spec.name), spec, now)


def due_leads(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, touch: int, now: datetime,
              routed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Leads (rows of `leads`, plus `route_via` and `route_seq`) due for `touch` now and not drafted for it yet."""
    routed = campaign_route(con, spec, now) if routed is None else routed
    due = routed[(routed["state"] == "due") & (routed["touch"] == touch)][["lead_id", "via", "seq"]]
    due = due.rename(columns={"via": "route_via", "seq": "route_seq"})
    con.register("_due_route", due if not due.empty else pd.DataFrame({"lead_id": pd.Series(dtype=str),
                                                                        "route_via": pd.Series(dtype=str), "route_seq": pd.Series(dtype="int64")}))
    try:
        return con.execute("""
            SELECT l.*, d.route_via, d.route_seq FROM _due_route d JOIN leads l USING (lead_id)
            WHERE NOT EXISTS (SELECT 1 FROM drafts x WHERE x.campaign_id = ? AND x.lead_id = d.lead_id AND x.touch = ?)
            ORDER BY l.lead_id
        """, [spec.name, touch]).df()
    finally:
        con.unregister("_due_route")


def assign_variants(campaign_id: str, step: str, lead_ids: pd.Series, variants: list) -> pd.Series:
    """Deterministic A/B assignment: a hash of (campaign, step, lead) in [0, 1) split by the variants' weights."""
    if not variants:
        return pd.Series([None] * len(lead_ids), index=lead_ids.index, dtype=object)
    u = lead_ids.astype(str).map(lambda lead: int.from_bytes(hashlib.sha256(f"{campaign_id}\x1f{step}\x1f{lead}".encode()).digest()[:8], "big") / 2**64)
    weights = np.array([v.weight for v in variants], dtype=float)
    edges = np.cumsum(weights) / weights.sum()
    index = np.minimum(np.searchsorted(edges, u.to_numpy(), side="right"), len(variants) - 1)
    return pd.Series([variants[i].name for i in index], index=lead_ids.index, dtype=object)
