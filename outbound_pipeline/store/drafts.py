"""Drafts, the path each recipient takes through the steps (`recipient_steps`), and the review decisions on drafts (`approvals`)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.store.warehouse import insert_new

# --------------------------------------------------------------------------------------------- drafts


def insert_drafts(con: duckdb.DuckDBPyConnection, drafts: pd.DataFrame) -> int:
    """Add the drafts not stored yet (one per campaign, touch and lead); returns how many were added."""
    return insert_new(con, "drafts", drafts)


def drafts_in_touch(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> int:
    return int(con.execute("SELECT count(*) FROM drafts WHERE campaign_id = ? AND touch = ?", [campaign_id, touch]).fetchall()[0][0])


def previous_bodies(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> dict[str, list[str]]:
    """lead id -> the bodies of its drafts for earlier touches, in touch order (so a follow-up does not repeat itself)."""
    rows = con.execute("""SELECT lead_id, list(body ORDER BY touch) AS bodies FROM drafts
                          WHERE campaign_id = ? AND touch < ? GROUP BY lead_id""", [campaign_id, touch]).fetchall()
    return {lead_id: list(bodies) for lead_id, bodies in rows}


def touch_drafts(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """Every draft of the touch, by draft id."""
    return con.execute("SELECT * FROM drafts WHERE campaign_id = ? AND touch = ? ORDER BY draft_id", [campaign_id, touch]).df()


def draft_touches(con: duckdb.DuckDBPyConnection, draft_ids: list[str]) -> dict[str, tuple[str, int]]:
    """draft id -> (campaign, touch) for the ids that are drafts."""
    found = con.execute("SELECT draft_id, campaign_id, touch FROM drafts WHERE list_contains(?, draft_id)", [draft_ids]).fetchall()
    return {d: (c, int(t)) for d, c, t in found}


# --------------------------------------------------------------------------------------------- recipient_steps

# The variant of the first step with variants each recipient entered (its `seq` order); set once, never moved.
_RECIPIENT_VARIANT = """
UPDATE recipients SET variant = first.variant
FROM (SELECT lead_id, arg_min(variant, seq) AS variant FROM recipient_steps
      WHERE campaign_id = $campaign AND variant IS NOT NULL GROUP BY lead_id) first
WHERE recipients.campaign_id = $campaign AND recipients.lead_id = first.lead_id AND recipients.variant IS NULL
"""


def record_path(con: duckdb.DuckDBPyConnection, drafted: pd.DataFrame, campaign_id: str, touch: int, step: str, now: datetime) -> int:
    """One `recipient_steps` row per lead drafted for this step (`route_seq`, `route_via`, `variant`): how it got here
    and which variant it drew. A lead's first A/B assignment in the campaign is also kept on its `recipients` row."""
    if drafted.empty:
        return 0
    added = insert_new(con, "recipient_steps", pd.DataFrame({
        "campaign_id": campaign_id, "lead_id": drafted["lead_id"].to_numpy(), "seq": drafted["route_seq"].to_numpy(),
        "touch": touch, "step": step, "variant": drafted["variant"].to_numpy(), "via": drafted["route_via"].to_numpy(),
        "entered_at": now,
    }))
    if drafted["variant"].notna().any():
        con.execute(_RECIPIENT_VARIANT, {"campaign": campaign_id})
    return added


# --------------------------------------------------------------------------------------------- approvals


def touch_decisions(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """The decisions already recorded on the touch's drafts: who decided what, when."""
    return con.execute("SELECT draft_id, decision, reviewer, decided_at FROM approvals WHERE campaign_id = ? AND touch = ?",
                       [campaign_id, touch]).df()


def insert_approvals(con: duckdb.DuckDBPyConnection, approvals: pd.DataFrame) -> int:
    """Add the approval rows of drafts not decided yet; returns how many were added (one decision per draft)."""
    return insert_new(con, "approvals", approvals)


def review_counts(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> dict[str, int]:
    """The touch's drafts: how many, how many waiting, approved, edited, rejected."""
    row = con.execute("""
        SELECT count(*) AS drafts,
               count(*) FILTER (WHERE a.draft_id IS NULL) AS waiting,
               count(a.draft_id) FILTER (WHERE a.decision = 'approved') AS approved,
               count(a.draft_id) FILTER (WHERE a.decision = 'edited') AS edited,
               count(a.draft_id) FILTER (WHERE a.decision = 'rejected') AS rejected
        FROM drafts d LEFT JOIN approvals a USING (draft_id) WHERE d.campaign_id = ? AND d.touch = ?
    """, [campaign_id, touch]).df().iloc[0]
    return {str(k): int(v) for k, v in row.items()}


def waiting_for_review(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """The touch's undecided drafts with their lead, the address they go to and (for answers) the reply they answer."""
    return con.execute("""
        SELECT d.*, l.first_name, l.last_name, l.company, l.role,
               CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address, p.body AS reply_body
        FROM drafts d JOIN leads l USING (lead_id) LEFT JOIN replies p ON p.reply_id = d.reply_id
        WHERE d.campaign_id = ? AND d.touch = ? AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id)
        ORDER BY d.draft_id
    """, [campaign_id, touch]).df()
